#!/usr/bin/env bash
# The prepared run for a lent GPU machine (the device tool): in about 9 minutes, what the 2-core CPU cannot do —
#   1. the kernels on the GPU: their tests there, then benchmarks/kernel_timings.py (the GPU table);
#   2. two training legs side by side on the one GPU, each continuing a checkpoint kept in checkpoints/: the JS
#      f-distill student of lamamba-shapes' 16 500-step weights, its teacher (genloom distill --init-student
#      --teacher-weights), and var-shapes' transformer on its colour VQVAE (genloom train var --init);
#   3. both results scored as in BENCHMARKS.md (500 samples, seeds 0–499, shapes-cnn against 5 000 test images).
# Everything lands in $OUT (at most 8 files come back: logs, the new student, the var weights); commit the weights
# to checkpoints/ and the figures to BENCHMARKS.md.
#
# On the device machine, from the repository root, with .whl carried (the machine has no diffusers; fetch once here:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .whl diffusers==0.42.1 importlib_metadata):
#   bash benchmarks/device_session.sh
# A dry run on this CPU (minutes of CPU, checks the plumbing, not the figures):
#   OUT=/tmp/ds PY=.venv/bin/python DEVICE=cpu MINUTES=0.5 DATA_SIZE=256 PER_CLASS=2 QUICK=1 BATCH=8 \
#       VAR_STEPS=20 TRAIN_SIZE=500 bash benchmarks/device_session.sh
set -u -o pipefail
OUT=${OUT:?set OUT to the folder that comes back}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-4}            # each training leg (both run at once)
BATCH=${BATCH:-128}              # the distillation's batch (a GPU step costs about the same at 32 and 128)
VAR_STEPS=${VAR_STEPS:-12000}    # the var leg's cosine schedule; cut at MINUTES if the GPU is slower than planned
TRAIN_SIZE=${TRAIN_SIZE:-20000}  # images the var leg renders first
DATA_SIZE=${DATA_SIZE:-5000}     # real images for the distillation head
PER_CLASS=${PER_CLASS:-50}       # samples per class in the scores
QUICK=${QUICK:-0}                # 1: the kernels' smoke sizes (dry runs)
STUDENT=${STUDENT:-checkpoints/lamamba_shapes_fdistill_js_stack.safetensors}
TEACHER=${TEACHER:-checkpoints/lamamba_shapes_16500.safetensors}  # the weights STUDENT was distilled from (its sha256)
GUIDE_SCALE=${GUIDE_SCALE:-6}    # the autoguidance w baked into the student's target (the kept student's)
VAR_INIT=${VAR_INIT:-src/genloom/assets/var_shapes.safetensors}
VAR_VAE=${VAR_VAE:-src/genloom/assets/var_shapes_vae.safetensors}
VAR_SIZE=${VAR_SIZE---depth 4 --width 256 --heads 4}  # VAR_INIT's transformer size (var-shapes' own since 2026-12-03)
mkdir -p "$OUT" || exit 1
LOG=$OUT/session.log

if ! $PY -c "import diffusers" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
GENLOOM=("$PY" -c 'from genloom.cli.main import main; main()')  # the console script, from src/

{ date; nvidia-smi -L 2>/dev/null; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
} > "$LOG" 2>&1

# 1. kernels, alone on the GPU so the timings are its own
if [ "$QUICK" = 1 ]; then SIZES="--repeats 1 --var-depth 1 --var-batch 1 --dimr-batch 1 --threads 1 --small"
else SIZES="--repeats 5 --var-batch 32"; fi
$PY -m pytest -q -p no:cacheprovider tests/kernels > "$OUT/kernel_tests.txt" 2>&1
echo "kernel tests: exit $?" >> "$LOG"
# shellcheck disable=SC2086
$PY benchmarks/kernel_timings.py $SIZES > "$OUT/kernels.txt" 2>&1
echo "kernel_timings.py: exit $?" >> "$LOG"

# 2. the two training legs side by side; each writes its weights when its minutes are up
"${GENLOOM[@]}" distill --init-student "$STUDENT" --teacher-weights "$TEACHER" --lr 3e-4 --critic-lr 2e-4 \
    --gan-weight 0.03 --batch-size "$BATCH" --guide-scale "$GUIDE_SCALE" \
    --data-size "$DATA_SIZE" --steps 1000000 --max-minutes "$MINUTES" --checkpoint-every 0 --device "$DEVICE" \
    --out /tmp/fd > "$OUT/distill.log" 2>&1 &
DISTILL=$!
"${GENLOOM[@]}" train var --vae "$VAR_VAE" --init "$VAR_INIT" $VAR_SIZE --train-size "$TRAIN_SIZE" \
    --var-steps "$VAR_STEPS" --warmup 100 --checkpoint-every 500 --max-minutes "$MINUTES" \
    --device "$DEVICE" --out /tmp/var > "$OUT/var.log" 2>&1
echo "var leg: exit $?" >> "$LOG"
wait $DISTILL
echo "distill leg: exit $?" >> "$LOG"

# 3. score and keep the results
student=$(ls -t /tmp/fd/*-fdistill-js*.safetensors 2>/dev/null | grep -v _state | head -1)
var=$(ls -t /tmp/var/var_shapes.safetensors /tmp/var/var_shapes_step*.safetensors 2>/dev/null | head -1)
[ -f /tmp/var/var_shapes_state.safetensors ] && cp /tmp/var/var_shapes_state.safetensors "$OUT/var_state.safetensors"
if [ -n "$student" ]; then
  cp "$student" "$OUT/student.safetensors"
  $PY benchmarks/shapes_quality.py --model fdistill --weights "$student" --scales 1 --per-class "$PER_CLASS" \
      >> "$LOG" 2>&1
fi
if [ -n "$var" ]; then
  cp "$var" "$OUT/var_shapes_colour.safetensors"
  $PY benchmarks/shapes_quality.py --model var-shapes --weights "$var" --vae "$VAR_VAE" --scales 1 3 5 \
      --per-class "$PER_CLASS" >> "$LOG" 2>&1
fi
date >> "$LOG"
