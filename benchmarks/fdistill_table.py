"""f-distill students against their teacher: wall time per image, NFE, class accuracy, FD, precision and recall
(reference classifier, against the shapes test split), and each student's training time, with the issue's bar
checked per student (≥ 20× faster per image, FD ≤ 2× the teacher's, accuracy within 10 points).

    python benchmarks/fdistill_table.py --students S_JS S_RKL S_FKL [--per-class 50]
        [--teacher-sampler ddim --teacher-steps 25]
    (a student is a `genloom distill` output file or a registered student name; the teacher is the one the first
    student names — its weights, checked against the sha256 the student recorded, and load options — sampled with
    its default sampler and steps unless given, and its default guidance: the row the bar is checked against. When
    the first student baked in other guidance (e.g. a stronger autoguidance), the teacher with that guidance is a
    second row, for reference; every model makes the same labels with the same seeds)
    smoke mode (CI): --students checkpoints/lamamba_shapes_fdistill_js.safetensors --teacher-steps 2 --per-class 1
        --num-reference 50 --batch-size 10
"""

from __future__ import annotations

import argparse
import time

import genloom
from genloom.data import load_split
from genloom.engine.errors import InvalidRequest
from genloom.eval import evaluate
from genloom.plugins.fdistill.settings import DistillSettings
from genloom.plugins.fdistill.student import check_teacher_sha256, guidance_request, teacher_guidance
from genloom.plugins.fdistill.trainer import baked_guidance


def measure(pipe, labels: list[int], seed: int, batch: int, num_reference: int, **request) -> dict:  # noqa: ANN001
    """Images (timed after a warm-up batch) and their scores."""
    pipe(labels=labels[:batch], seed=seed + 10_000, output_type="pt", batch_size=batch, **request)  # lazy imports
    t0 = time.perf_counter()
    res = pipe(labels=labels, seed=seed, output_type="pt", batch_size=batch, **request)
    seconds = (time.perf_counter() - t0) / len(labels)
    report = evaluate(res.images * 2 - 1, labels, num_reference=num_reference, subsets=5 if len(labels) >= 50 else 1)
    return {"s_per_image": seconds, "nfe": sum(res.nfe) / len(labels), "report": report}


def shown(request: dict) -> str:
    """A guidance request in a table cell: ``cfg+autoguidance w 3, stop=0.5, autoguidance.scale=4``."""
    if request.get("guidance") in (None, "none"):
        return "no guidance"
    extra = [f"{k}={v:g}" for k, v in request.items() if isinstance(v, float) and k != "guidance_scale"]
    return ", ".join([f"{request['guidance']} w {request['guidance_scale']:g}", *extra])


def default_guidance(spec) -> dict:  # noqa: ANN001
    """The teacher's default guidance as explicit pipeline keywords (what `genloom distill` bakes in by default)."""
    w, stop, guide, g = baked_guidance(spec, DistillSettings(teacher=spec.name))
    return guidance_request(w, {"cfg_stop": stop, "guide_weights": guide, "guide_scale": g})


def load_student(student: str):  # noqa: ANN201
    if student in genloom.default_engine().models:
        return genloom.load(student)
    return genloom.load("fdistill", weights=student)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", nargs="+", required=True)
    parser.add_argument("--teacher-weights", default=None, help="default: the weights the first student names "
                        "(their sha256 must be the one it recorded)")
    parser.add_argument("--teacher-sampler", default=None)
    parser.add_argument("--teacher-steps", type=int, default=None)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-reference", type=int, default=5000)
    args = parser.parse_args()
    labels = [i % 10 for i in range(10 * args.per_class)]
    load_split("test", min(args.num_reference, 5000))  # render the reference once, outside the timings
    students = [load_student(s) for s in args.students]
    c = students[0].model.config
    teacher_weights = args.teacher_weights or c.teacher_weights or None
    teacher = genloom.load(c.teacher, weights=teacher_weights, config=c.teacher_config, sampler=args.teacher_sampler,
                           steps=args.teacher_steps, **(c.teacher_options or {}))
    try:
        check_teacher_sha256(c, args.students[0], teacher.model.weights[0].sha256,
                             teacher_weights or f"{c.teacher!r}'s registered weights", unrecorded_ok=True)
    except InvalidRequest as error:
        raise SystemExit(str(error)) from None
    spec = teacher.spec
    sampler = args.teacher_sampler or spec.default_sampler
    steps = args.teacher_steps or spec.default_steps
    default = default_guidance(teacher.spec)
    rows = [(f"teacher {c.teacher}", f"{sampler} {steps} steps, {shown(default)}", "-",
             measure(teacher, labels, args.seed, args.batch_size, args.num_reference, **default))]
    baked = teacher_guidance(c)  # the guidance the first student baked in
    if baked != default:
        rows.append((f"teacher {c.teacher} (as baked into the first student)", f"{sampler} {steps} steps, "
                     f"{shown(baked)}", "-", measure(teacher, labels, args.seed, args.batch_size, args.num_reference,
                                                     **baked)))
    for pipe in students:
        s = pipe.model.config
        trained = f"{s.iterations} it, {s.train_seconds / 60:.0f} min"
        rows.append((f"student {s.divergence}", f"one step ({shown(teacher_guidance(s))} distilled)", trained,
                     measure(pipe, labels, args.seed, args.batch_size, args.num_reference)))
    base = rows[0][3]
    print(f"{len(labels)} samples per model (seed {args.seed}+, labels i % 10), {args.num_reference} test images as "
          f"reference, batch {args.batch_size}")
    print("| model | sampling | training | NFE | s/image | speed-up | accuracy | FD | precision | recall | bar |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, sampling, trained, m in rows:
        r = m["report"]
        speed = base["s_per_image"] / m["s_per_image"]
        if name.startswith("teacher"):  # the bar is a student's, against the first (default) teacher row
            verdict = "-"
        else:
            checks = [speed >= 20, r.fd <= 2 * base["report"].fd, r.accuracy >= base["report"].accuracy - 0.10]
            verdict = "pass" if all(checks) else "miss (" + ", ".join(
                what for ok, what in zip(checks, ("speed", "FD", "accuracy"), strict=True) if not ok) + ")"
        print(f"| {name} | {sampling} | {trained} | {m['nfe']:.0f} | {m['s_per_image']:.4f} | {speed:.1f}× | "
              f"{r.accuracy:.3f} | {r.fd:.3f} | {r.precision:.3f} | {r.recall:.3f} | {verdict} |")


if __name__ == "__main__":
    main()
