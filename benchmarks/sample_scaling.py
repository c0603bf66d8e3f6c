"""`genloom sample` throughput with 1 and N processes (accelerate launch; gloo on CPU, one GPU each on GPUs).

Each configuration writes the same set (same seed, labels, shard and batch size) into a fresh folder; the script
checks the files are byte-identical and prints wall time, images/s (including start-up: model load per process)
and the peak resident memory of the largest process so far (getrusage over finished children).

    python benchmarks/sample_scaling.py [--model var-shapes] [--num 256] [--processes 1 2] [--batch-size 16]
    smoke mode (CI): --model smoke --num 8 --processes 1 --batch-size 4
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="var-shapes")
    parser.add_argument("--num", type=int, default=256)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    common = ["sample", "-m", args.model, "-n", str(args.num), "--seed", "0", "--batch-size", str(args.batch_size)]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    outputs = []
    print(f"{args.model}: {args.num} images, batch {args.batch_size}")
    print(f"{'processes':>9} {'wall s':>8} {'images/s':>9} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.processes:
            out = Path(tmp) / f"p{n}.npz"
            if n == 1:
                cmd = [sys.executable, "-m", "genloom", *common, "--out", str(out)]
            else:
                cmd = [launcher, "launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
                       "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "genloom", *common,
                       "--out", str(out)]
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // n))
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"{n} process(es) failed:\n{done.stderr[-2000:]}")
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            outputs.append(out.read_bytes())
            print(f"{n:>9} {wall:>8.1f} {args.num / wall:>9.2f} {peak:>13.0f}")
    print("identical sets for every process count:", all(o == outputs[0] for o in outputs))


if __name__ == "__main__":
    main()
