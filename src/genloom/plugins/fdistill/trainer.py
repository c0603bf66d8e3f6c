"""`genloom distill`: the f-distill training loop (spec §4.8) — teacher from the registry, real data for the head,
alternating student / critic iterations, EMA student, resumable legs, several processes through accelerate.

Every random draw comes from one CPU generator in a fixed order and covers the *global* batch; process k takes its
slice of it and gradients are averaged over processes, so the run does not depend on the device and a resumed leg
continues bit-identically on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...engine import weights
from ...engine.devices import process_state, resolve_device
from ...engine.errors import InvalidRequest
from ...engine.options import parse_key_values
from ...engine.specs import Paradigm
from ...engine.stacking import SEPARATOR, part_options
from ...training import (
    check_output_folder,
    check_settings,
    check_training_state,
    elapsed_seconds,
    load_training_state,
    recorded_settings,
    save_training_state,
    with_label_table_group,
)
from .divergences import divergence as find_divergence
from .objective import Distiller, Draws, Regression
from .pairs import check_pairs_file, pairs_path, teacher_pairs
from .settings import METADATA_KEY, SAME_RUN, SINCE, DistillSettings
from .student import check_teacher_sha256, read_student_config

PROTOCOL = ("denoiser", "with_denoiser", "encode", "denoise_features")
LOG_EVERY = 50  # iterations between log lines


@dataclasses.dataclass
class Teacher:
    """The loaded teacher and what the student file records about it."""

    model: Any
    name: str
    weights_ref: str
    sha256: str
    options: dict[str, Any]
    config: dict[str, Any] | None
    guidance_scale: float
    cfg_stop: float = 1.0
    guide: Any = None  # the baked autoguidance guide (a model of the teacher's family) or None
    guide_weights: str | None = None
    guide_sha256: str | None = None
    guide_scale: float = 1.0

    def baked_guide(self) -> dict[str, Any] | None:
        """What the student bakes in beyond plain CFG (None: nothing — so states of CFG-only runs still resume)."""
        if self.guide is None and self.cfg_stop == 1.0:
            return None
        return {"cfg_stop": self.cfg_stop, "guide_weights": self.guide_weights, "guide_sha256": self.guide_sha256,
                "guide_scale": self.guide_scale}

    def describe(self) -> str:
        text = f"CFG w {self.guidance_scale:g}" + (f" on the top {self.cfg_stop:g} of t" if self.cfg_stop < 1 else "")
        return text + (f", autoguidance w {self.guide_scale:g} by {self.guide_weights}" if self.guide else "")


def student_name(teacher: str, divergence: str) -> str:
    return f"{teacher}-fdistill-{find_divergence(divergence).name}"


def load_teacher(engine: Any, s: DistillSettings, device: torch.device) -> Teacher:
    """The teacher through the engine's registry, checked: a diffusion model whose family implements the trainable
    protocol, with a null class when CFG is baked in."""
    spec = engine.models[s.teacher]  # NotRegistered (with close names) for an unknown teacher
    if spec.paradigm is not Paradigm.DIFFUSION:
        raise InvalidRequest(f"f-distill distils diffusion models; {s.teacher!r} is a {spec.paradigm.value} model. "
                             f"Pick a diffusion teacher (`genloom models`), e.g. lamamba-shapes.")
    options = parse_key_values(s.teacher_option, "--teacher-option")
    model = engine.build_model(s.teacher, weights=s.teacher_weights, device=device, **options)
    missing = [m for m in PROTOCOL if not callable(getattr(model, m, None))]
    if missing:
        raise InvalidRequest(f"Model {s.teacher!r} (plugin {spec.plugin!r}) does not offer the trainable diffusion "
                             f"protocol f-distill needs (missing {', '.join(missing)}; see "
                             f"genloom.samplers.diffusion.TrainableDiffusionModel).")
    w, cfg_stop, guide_ref, guide_scale = baked_guidance(spec, s)
    if w != 1.0 and model.null_class is None:
        raise InvalidRequest(f"--guidance-scale {w} bakes CFG into the student, but teacher {s.teacher!r} has no null "
                             f"class (it was not trained for CFG); use --guidance-scale 1.")
    guide = None
    if guide_ref is not None:
        guide = engine.build_model(s.teacher, weights=guide_ref, device=device, dtype=model.dtype, **options)
        if tuple(guide.latent_shape) != tuple(model.latent_shape):
            raise InvalidRequest(f"The guide {guide_ref!r} works on latents {tuple(guide.latent_shape)}, the teacher "
                                 f"on {tuple(model.latent_shape)}: a guide is a weaker checkpoint of the same model.")
    file = model.weights[0]
    config = getattr(model, "config", None)
    return Teacher(model=model, name=s.teacher, weights_ref=s.teacher_weights or spec.default_weights or "",
                   sha256=file.sha256, options=dict(options),
                   config=asdict(config) if dataclasses.is_dataclass(config) else None, guidance_scale=float(w),
                   cfg_stop=cfg_stop, guide=guide, guide_weights=None if guide is None else str(guide_ref),
                   guide_sha256=None if guide is None else guide.weights[0].sha256, guide_scale=guide_scale)


def baked_guidance(spec: Any, s: DistillSettings) -> tuple[float, float, str | None, float]:
    """(CFG w, CFG's stop, guide weights or None, guide w): what is given, else the teacher's default guidance —
    of a policy or a stack, CFG (with its step window) and autoguidance are what a one-step student can bake in."""
    parts = (spec.default_guidance or "").split(SEPARATOR)

    def default(policy: str, key: str) -> Any:  # read as the stack reads its options
        if policy not in parts:
            return None
        strength, own = part_options(parts, parts.index(policy), spec.default_guidance_scale,
                                     spec.default_guidance_options or {})
        return strength if key == "scale" else own.get(key)

    w = s.guidance_scale if s.guidance_scale is not None else (default("cfg", "scale") or 1.0)
    if not w >= 1.0:
        raise InvalidRequest(f"--guidance-scale must be ≥ 1 (1: no CFG), got {w}.")
    stop = s.cfg_stop if s.cfg_stop is not None else float(default("cfg", "stop") or 1.0)
    if not 0.0 < stop <= 1.0:
        raise InvalidRequest(f"--cfg-stop must be in (0, 1] (1: CFG at every noise level), got {stop}.")
    guide = s.guide_weights if s.guide_weights is not None else default("autoguidance", "guide_weights")
    guide = None if guide in (None, "", "none") else str(guide)
    if guide is None:
        if s.guide_scale is not None:
            raise InvalidRequest("--guide-scale bakes autoguidance in, but there is no guide: pass --guide-weights "
                                 "(a weaker checkpoint of the teacher).")
        return float(w), stop, None, 1.0
    g = s.guide_scale if s.guide_scale is not None else default("autoguidance", "scale")
    if g is None:
        raise InvalidRequest(f"--guide-weights {guide!r} needs --guide-scale (the autoguidance strength, ≥ 1).")
    if not g >= 1.0:
        raise InvalidRequest(f"--guide-scale must be ≥ 1 (1: no autoguidance), got {g}.")
    return float(w), stop, guide, float(g)


def real_data(teacher: Teacher, s: DistillSettings, log: Callable[[str], None]) -> tuple[torch.Tensor, torch.Tensor]:
    """The real images for the head, in the teacher's input space (encoded once), and their labels."""
    model, spec = teacher.model, teacher.model.spec
    if s.data == "shapes":
        from ...data.constants import IMAGE_SIZE, NUM_CLASSES
        from ...data.shapes import load_split

        if spec.image_size != IMAGE_SIZE or spec.num_classes != NUM_CLASSES:
            raise InvalidRequest(f"--data shapes is {IMAGE_SIZE}-px images of {NUM_CLASSES} classes; teacher "
                                 f"{teacher.name!r} makes {spec.image_size}-px images of {spec.num_classes} classes. "
                                 f"Pass --data an ADM .npz of real images with labels.")
        log(f"rendering {s.data_size} real images…")
        images, labels = load_split("train", s.data_size)
    else:
        from ...engine.images import uint8_to_signed
        from ...eval.npz import read_npz

        if not Path(s.data).is_file():
            raise InvalidRequest(f"--data {s.data!r} is neither 'shapes' nor an existing .npz file.")
        arr, lab = read_npz(s.data)
        if lab is None:
            raise InvalidRequest(f"--data {s.data!r} has no labels (arr_1); the head needs class-labelled images.")
        if arr.shape[1] != spec.image_size:
            raise InvalidRequest(f"--data {s.data!r} holds {arr.shape[1]}-px images; teacher {teacher.name!r} makes "
                                 f"{spec.image_size}-px images.")
        images = uint8_to_signed(torch.from_numpy(arr[:s.data_size]).permute(0, 3, 1, 2))
        labels = torch.from_numpy(lab[:s.data_size]).long()
    log(f"encoding {len(images)} real images with the teacher's autoencoder…")
    with torch.no_grad():
        latents = model.encode(images).float()  # batched on the teacher's device, kept on the CPU
    return latents, labels


def draw(gen: torch.Generator, s: DistillSettings, shape: tuple[int, ...], num_classes: int, t_range: tuple[int, int],
         real_count: int, critic: bool) -> Draws:
    """One iteration's randomness for the global batch (student noise, labels, times, noise; real rows for a
    critic step, teacher-pair rows for a student step when the regression loss is on)."""
    b = s.batch_size
    z = torch.randn((b, *shape), generator=gen)
    labels = torch.randint(max(num_classes, 1), (b,), generator=gen)  # class-free teachers ignore them
    t = torch.randint(t_range[0], t_range[1] + 1, (b,), generator=gen)
    eps = torch.randn((b, *shape), generator=gen)
    if not critic:
        pair_rows = torch.randint(s.regression_pairs, (b,), generator=gen) if s.regression_pairs else None
        return Draws(z, labels, t, eps, pair_rows=pair_rows)
    rows = torch.randint(real_count, (b,), generator=gen)
    real_t = torch.randint(t_range[0], t_range[1] + 1, (b,), generator=gen)
    real_eps = torch.randn((b, *shape), generator=gen)
    return Draws(z, labels, t, eps, rows, real_t, real_eps)


def regression_batch(pairs: dict[str, torch.Tensor] | None, d: Draws, weight: float,
                     device: torch.device) -> Regression | None:
    """The teacher pairs a student step regresses onto (None when the regression loss is off)."""
    if pairs is None or d.pair_rows is None:
        return None
    rows = d.pair_rows.cpu()
    return Regression(pairs["z"][rows].to(device), pairs["labels"][rows].to(device), pairs["x0"][rows].to(device),
                      weight)


def _rows(d: Draws, rank: int, world: int) -> Draws:
    n = len(d.z) // world
    cut = slice(rank * n, (rank + 1) * n)
    return d.map(lambda v: v[cut])  # views (astuple deep-copied every tensor)


def _average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


def initial_student(s: DistillSettings, teacher: Teacher, resume: str | None) -> dict[str, Any] | None:
    """The student file ``--init-student`` starts from, checked before any work: a student of this very teacher
    (its weights' sha256). Its divergence and baked guidance may differ from this run's. → what the new files
    record of it (None without ``--init-student``)."""
    if s.init_student is None:
        return None
    if resume:
        raise InvalidRequest("--init-student starts a new run from a student file and --resume continues a run from "
                             "its state; pass one of them.")
    path = weights.resolve(s.init_student).path
    c = read_student_config(path)  # WeightsError for a file that is not a student
    check_teacher_sha256(c, f"--init-student {s.init_student!r}", teacher.sha256, f"this teacher {teacher.name!r}",
                         hint=", or start from a student of this teacher")
    return {"weights": str(s.init_student), "sha256": weights.sha256_file(path), "iterations": c.iterations,
            "train_seconds": c.train_seconds, "divergence": c.divergence, "guidance_scale": c.guidance_scale,
            "baked_guide": c.baked_guide}


def student_metadata(teacher: Teacher, s: DistillSettings, steps: int, t_top: int, seconds: float,
                     init: dict[str, Any] | None = None) -> dict[str, str]:
    """What a student file says about itself: the loader reads it (teacher, its options and config) and the
    manifest of every generation shows it. A run started from another student counts that student's iterations
    and seconds too, and names it."""
    info = {"teacher": teacher.name, "teacher_weights": teacher.weights_ref, "teacher_sha256": teacher.sha256,
            "teacher_options": teacher.options, "teacher_config": teacher.config,
            "divergence": find_divergence(s.divergence).name, "guidance_scale": teacher.guidance_scale,
            "baked_guide": teacher.baked_guide(), "t_top": t_top,
            "iterations": steps + (init["iterations"] if init else 0),
            "train_seconds": round(seconds + (init["train_seconds"] if init else 0.0), 1), "init_student": init}
    return {METADATA_KEY: json.dumps(info, sort_keys=True)}


def distill(out_dir: str | Path, s: DistillSettings, resume: str | None = None,
            log: Callable[[str], None] = print, engine: Any = None) -> Path:
    """Distil ``s.teacher`` into a one-step student; → the student's ``.safetensors`` (or the resumable state when
    the leg's time ran out). Every setting, the teacher and a ``resume`` state are checked before training."""
    from ...engine.engine import default_engine

    check_settings(s, positive=("steps", "batch_size", "lr", "critic_lr", "class_lr_mult", "student_update_freq",
                                "gan_weight", "ratio_bins", "data_size", "max_minutes"), fractions=("ratio_ema", "ema"))
    if s.critic_warmup < 0 or s.critic_warmup >= s.steps:
        raise InvalidRequest(f"--critic-warmup must be ≥ 0 and below --steps ({s.steps}): the student trains after "
                             f"it; got {s.critic_warmup}.")
    if s.regression_pairs < 0 or not s.regression_weight >= 0:
        raise InvalidRequest(f"--regression-pairs and --regression-weight must be ≥ 0 (0 pairs: no regression "
                             f"loss), got {s.regression_pairs} and {s.regression_weight}.")
    div = find_divergence(s.divergence)
    if not 0 <= s.t_min < s.t_max <= 1:
        raise InvalidRequest(f"--t-min/--t-max must satisfy 0 ≤ t-min < t-max ≤ 1, got {s.t_min}, {s.t_max}.")
    state = process_state()
    world, rank = state.num_processes, state.process_index
    if s.batch_size % world:
        raise InvalidRequest(f"--batch-size {s.batch_size} must split evenly over {world} processes.")
    engine = engine or default_engine()
    device = resolve_device(s.device)
    teacher = load_teacher(engine, s, device)
    if s.class_lr_mult != 1.0 and not label_table(teacher.model.denoiser(), teacher.model.spec.num_classes):
        raise InvalidRequest(f"--class-lr-mult {s.class_lr_mult}: {s.teacher}'s network has no label table (an "
                             f"embedding with a row per class); leave it at 1.")
    stem = student_name(s.teacher, s.divergence)
    out = check_output_folder(out_dir, (f"{stem}.safetensors",), resuming=resume is not None)
    run_settings = {**asdict(s), "teacher_weights_sha256": teacher.sha256, "divergence": div.name,
                    "guidance_scale": teacher.guidance_scale, "baked_guide": teacher.baked_guide(),
                    "teacher_option": list(s.teacher_option)}
    init = initial_student(s, teacher, resume)
    if resume:
        check_training_state(resume, run_settings, SAME_RUN, SINCE)  # another teacher's or run's state: refused here
        init = (recorded_settings(resume) or {}).get("init")  # a started run's origin (a state: checked above)
    run_settings["init"] = init
    where = pairs_path(out, stem, s.regression_pairs)
    if s.regression_pairs:
        check_pairs_file(where, teacher, s.regression_pairs, s.seed)  # another run's pairs: refused here
    real, real_labels = real_data(teacher, s, log)
    pairs = None
    if s.regression_pairs:  # sampled once by the main process, read by the others and by a resumed leg
        if state.is_main_process:
            pairs = teacher_pairs(engine, teacher, s.regression_pairs, s.seed, where, log)
        state.wait_for_everyone()
        pairs = pairs or teacher_pairs(engine, teacher, s.regression_pairs, s.seed, where, log)

    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    distiller, optimizers, modules = _build_run(teacher, div, s, device)
    opt_student, opt_critic = optimizers["student"], optimizers["critic"]
    critic_params = [p for group in opt_critic.param_groups for p in group["params"]]
    t_range = distiller.t_range
    state_path = out / f"{stem}_state.safetensors"
    start, spent = 0, 0.0
    if resume:
        start = load_training_state(resume, modules, optimizers, gen, run_settings, SAME_RUN, SINCE)
        spent = elapsed_seconds(resume)
        log(f"resuming at iteration {start} from {resume}")
    elif init:
        distiller.start_student_from(weights.read_state_dict(weights.resolve(init["weights"]).path))
        log(f"the student starts from {init['weights']} ({init['iterations']} iterations of {init['divergence']})")
    spec = teacher.model.spec
    shape = tuple(teacher.model.latent_shape)
    log(f"distilling {teacher.name} ({teacher.describe()}) with {div.name} on {device}, "
        f"{world} process(es)")
    bar = _progress(s.steps, start, state.is_main_process)
    t0 = time.perf_counter()
    it = start
    latest: dict[str, float] = {}
    while it < s.steps:
        student_turn = it >= s.critic_warmup and it % s.student_update_freq == 0
        d = _rows(draw(gen, s, shape, spec.num_classes, t_range, len(real), not student_turn), rank, world)
        d = d.to(device)
        if student_turn:
            loss, stats = distiller.student_loss(d, regression_batch(pairs, d, s.regression_weight, device))
            opt, params = opt_student, list(distiller.student.parameters())
        else:
            rows = d.real_rows.cpu()  # type: ignore[union-attr]
            loss, stats = distiller.critic_loss(d, real[rows].to(device), real_labels[rows].to(device))
            opt, params = opt_critic, critic_params
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(params, world)
        opt.step()
        it += 1
        if student_turn:
            n = it // s.student_update_freq
            distiller.update_ema(min(s.ema, (1 + n) / (10 + n)))
        latest.update(stats)  # the last student step's losses and the last critic step's
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in latest.items()}, refresh=False)
        if it % LOG_EVERY == 0 and state.is_main_process:  # the bar is off when the output is not a terminal
            seconds = spent + time.perf_counter() - t0
            log(f"iteration {it}/{s.steps} ({seconds:.0f} s): " + ", ".join(f"{k} {v:.4g}" for k, v in latest.items()))
        stop = None
        if time.perf_counter() - t0 > 60 * s.max_minutes and it < s.steps:
            stop = f"--max-minutes reached at iteration {it}; continue with --resume {state_path}"
        due = s.checkpoint_every and it % s.checkpoint_every == 0
        if (due or stop) and it < s.steps and state.is_main_process:
            seconds = spent + time.perf_counter() - t0
            total = it + (init["iterations"] if init else 0)  # the file is named by the iterations it records
            weights.save_state_dict(distiller.student_ema.state_dict(), out / f"{stem}_step{total}.safetensors",
                                    metadata=student_metadata(teacher, s, it, distiller.t_top, seconds, init))
            save_training_state(state_path, modules, optimizers, gen, it, run_settings, elapsed=seconds)
        if stop:
            bar.close()
            log(stop)
            return state_path
    bar.close()
    path = out / f"{stem}.safetensors"
    if state.is_main_process:
        seconds = spent + time.perf_counter() - t0
        weights.save_state_dict(distiller.student_ema.state_dict(), path,
                                metadata=student_metadata(teacher, s, it, distiller.t_top, seconds, init))
        save_training_state(state_path, modules, optimizers, gen, it, run_settings, elapsed=seconds)  # go on later
        log(f"wrote {path} ({seconds:.0f} s of training); --resume {state_path} --steps N continues it")
    state.wait_for_everyone()
    return path


def _build_run(teacher: Teacher, div: Any, s: DistillSettings, device: torch.device) -> tuple[Distiller, dict[str, Any],
                                                                                            dict[str, Any]]:
    """The distiller on ``device``, its two optimizers (student; fake score + head) and the modules a state holds."""
    horizon = teacher.model.noise_schedule.num_train_timesteps
    t_range = (round(s.t_min * (horizon - 1)), round(s.t_max * (horizon - 1)))
    cfg_from = math.ceil((1.0 - teacher.cfg_stop) * horizon)  # the timesteps a sampler's first cfg_stop covers
    distiller = Distiller(teacher.model, div, teacher.guidance_scale, t_range, s.ratio_bins, s.ratio_ema,
                          s.gan_weight, s.disc_weight, cfg_from=cfg_from,
                          guide=None if teacher.guide is None else teacher.guide.denoiser(),
                          guide_scale=teacher.guide_scale).to(device)
    adamw = {"betas": (0.9, 0.999), "weight_decay": 0.01}
    table = label_table(distiller.student, teacher.model.spec.num_classes)
    optimizers = {
        "student": torch.optim.AdamW(with_label_table_group(distiller.student, table, s.lr, s.class_lr_mult), lr=s.lr,
                                     **adamw),
        "critic": torch.optim.AdamW([*distiller.fake.parameters(), *distiller.head.parameters()], lr=s.critic_lr,
                                    **adamw),
    }
    modules = {"student": distiller.student, "student_ema": distiller.student_ema, "fake": distiller.fake,
               "head": distiller.head, "ratio": distiller.ratio}
    return distiller, optimizers, modules


def label_table(net: torch.nn.Module, num_classes: int) -> list[torch.nn.Parameter]:
    """The weights of ``net``'s label table: its embeddings of one row per class (plus the null row)."""
    return [m.weight for m in net.modules()
            if isinstance(m, torch.nn.Embedding) and num_classes and m.num_embeddings in (num_classes, num_classes + 1)]


def _progress(total: int, start: int, main: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="f-distill", unit="it", disable=None if main else True)
