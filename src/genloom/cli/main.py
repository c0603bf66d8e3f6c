"""``genloom``: click commands. Listing commands never import torch; generation does, lazily."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..engine.errors import GenloomError, InvalidRequest


def _engine() -> Any:
    from ..engine.engine import default_engine

    return default_engine()


class _Group(click.Group):
    """Adds plugin-contributed commands, and turns genloom errors into one readable line (exit 2)."""

    group_name: str | None = None  # set on sub-groups that plugins extend (e.g. "train")

    def _extra(self) -> dict[str, Any]:
        return {s.command.name or n: s.command for n, s in _plugin_commands().items() if s.group == self.group_name}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._extra()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._extra().get(name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GenloomError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def _plugin_commands() -> dict[str, Any]:
    try:
        return dict(_engine().commands)
    except GenloomError:
        return {}


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genloom")
def cli() -> None:
    """genloom — sample, compare, guide and distill image generators through plugins."""


@cli.group(cls=_Group)
def train() -> None:
    """Train the embedded default models (commands contributed by plugins)."""


train.group_name = "train"  # type: ignore[attr-defined]


@cli.group(cls=_Group)
def calibrate() -> None:
    """Fit what a calibrated guidance policy needs (commands contributed by plugins)."""


calibrate.group_name = "calibrate"  # type: ignore[attr-defined]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Plugins seen: version, hooks, status and the error of any that failed."""
    records = _engine().plugin_report
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in records], indent=2))
        return
    rows = [
        (r.name, r.version or "-", r.source, r.status, ",".join(h.replace("register_", "") for h in r.hooks) or "-",
         "; ".join(f"{k}: {', '.join(v)}" for k, v in r.contributions.items()) or "-")
        for r in records
    ]
    _table(("plugin", "version", "source", "status", "hooks", "contributes"), rows)
    for r in records:
        if r.error:
            click.echo(f"\n{r.name} {r.status}: {r.error}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--options", "with_options", is_flag=True, help="Also list each model's load options (-L KEY=VALUE).")
def models(as_json: bool, with_options: bool) -> None:
    """Models the loaded plugins provide."""
    specs = list(_engine().models.values())
    if as_json:
        click.echo(json.dumps([
            {"name": s.name, "paradigm": s.paradigm.value, "classes": s.num_classes, "image_size": s.image_size,
             "null_class": s.null_class, "plugin": s.plugin, "default_weights": s.default_weights,
             "default_steps": s.default_steps, "load_options": [o.form_field() for o in s.load_options],
             "description": s.description} for s in specs], indent=2))
        return
    _table(("model", "paradigm", "classes", "resolution", "origin", "description"),
           [(s.name, s.paradigm.value, str(s.num_classes or "-"), f"{s.image_size}px" if s.image_size else "-",
             s.plugin, s.description) for s in specs])
    if with_options:
        _option_lists("load options of", specs, "load_options")


@cli.command()
def samplers() -> None:
    """Sampling loops, by paradigm, and the options each declares (-o KEY=VALUE)."""
    specs = list(_engine().samplers.values())
    _table(("sampler", "paradigm", "origin", "description"),
           [(s.name, s.paradigm.value, s.plugin, s.description) for s in specs])
    _option_lists("options of", specs, "options")


@cli.command()
def policies() -> None:
    """Guidance policies, and the options each declares (-o KEY=VALUE)."""
    specs = list(_engine().guidance.values())
    _table(("policy", "paradigms", "requires", "origin", "description"),
           [(g.name, ",".join(sorted(p.value for p in g.paradigms)), ",".join(sorted(g.requires)) or "-",
             g.plugin, g.description) for g in specs])
    _option_lists("options of", specs, "options")


@cli.command()
def kernels() -> None:
    """Compute kernels, their backends, and what GENLOOM_KERNELS=auto runs on this machine (and why)."""
    from ..kernels.dispatch import ENV, backend_from_env

    engine = _engine()
    _table(("kernel", "backends", "auto runs", "origin"),
           [(*row, engine.kernels[row[0]].plugin) for row in engine.dispatcher.report()])
    click.echo(f"\n{ENV}={backend_from_env()} (auto | torch: the exact references | triton)")


def _option_lists(title: str, specs: list[Any], field: str) -> None:
    """The declared options of each spec that has some, one help line each (derived from the declaration)."""
    from ..engine.options import options_help

    for spec in specs:
        declared = getattr(spec, field)
        if declared:
            click.echo(f"\n{title} {spec.name}:\n{options_help(declared)}")


_GENERATION_OPTIONS = [
    click.option("--model", "-m", required=True, help="Model name (see `genloom models`)."),
    click.option("--labels", "-l", multiple=True,
                 help="Class indices or names, one per image: --labels 3 7, or -l 3 -l 7, or '3,7'."),
    click.option("--num-images", "-n", type=int, default=None, help="Images to make (default: one per label)."),
    click.option("--seed", "-s", type=click.IntRange(min=0), default=None,
                 help="Base seed; image i uses seed + i (default: a random one, recorded in the manifest)."),
    click.option("--guidance", "-g", default=None, help="Guidance policy (see `genloom policies`), or 'none'."),
    click.option("--scale", type=float, default=None, help="Guidance scale."),
    click.option("--sampler", default=None, help="Sampler (see `genloom samplers`)."),
    click.option("--steps", type=int, default=None, help="Sampling steps."),
    click.option("--batch-size", type=int, default=None, help="Images per forward batch."),
    click.option("--batch-invariant", is_flag=True, help="One image at a time: bit-identical to generating alone."),
    click.option("--weights", default=None, help="Checkpoint path, hf://owner/repo/file[@rev] or asset:<name>."),
    click.option("--vae", default=None, help="The model's autoencoder / VQVAE checkpoint (families that take vae=)."),
    click.option("--config", "config_file", default=None, type=click.Path(exists=True, dir_okay=False),
                 help="JSON file with the family's config (what its checkpoint's shapes do not determine)."),
    click.option("--load-option", "-L", "load_options", multiple=True,
                 help="Family load option KEY=VALUE, e.g. -L num_heads=4 (see `genloom models --options`)."),
    click.option("--device", default=None, help="cpu, cuda, cuda:N, mps (default: automatic)."),
    click.option("--dtype", default=None, help="fp32 (default), fp16 or bf16."),
    click.option("--option", "-o", "options", multiple=True,
                 help="Policy or sampler option KEY=VALUE (see `genloom policies` / `genloom samplers`)."),
]


def _generation_options(func: Any) -> Any:
    for option in reversed(_GENERATION_OPTIONS):
        func = option(func)
    return click.argument("extra_labels", nargs=-1, metavar="[LABELS]...")(func)


def _load_pipeline(model: str, weights: str | None, vae: str | None, config_file: str | None,
                   load_options: tuple[str, ...], device: str | None, dtype: str | None) -> Any:
    from ..engine.options import parse_key_values

    extra = parse_key_values(load_options, "--load-option")
    if vae is not None:
        extra["vae"] = vae
    return _engine().load(model, weights=weights, device=device, dtype=dtype, config=_read_config(config_file),
                          **extra)


def _run_generation(model: str, labels: list[Any] | None, num_images: int | None, seed: int | None,
                    guidance: str | None, scale: float | None, sampler: str | None, steps: int | None,
                    batch_size: int | None, batch_invariant: bool, weights: str | None, vae: str | None,
                    config_file: str | None, load_options: tuple[str, ...], device: str | None,
                    dtype: str | None, options: tuple[str, ...]) -> Any:
    """Load, generate with a tqdm bar (created at the first step, so a refused request prints none)."""
    from tqdm.auto import tqdm

    from ..engine.options import parse_key_values

    option_values = parse_key_values(options, "--option")
    pipe = _load_pipeline(model, weights, vae, config_file, load_options, device, dtype)
    bars: list[Any] = []

    def on_progress(event: Any) -> None:
        if not bars:
            bars.append(tqdm(total=1000, desc=model, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}"))
        bars[0].n = int(1000 * event.fraction)
        bars[0].refresh()

    try:
        return pipe(labels=labels, num_images=num_images, seed=seed, guidance=guidance, guidance_scale=scale,
                    sampler=sampler, steps=steps, batch_size=batch_size, batch_invariant=batch_invariant,
                    progress=on_progress, **option_values)
    finally:
        for bar in bars:
            bar.close()


def _read_config(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"--config {path!r} is not a readable JSON file ({exc}).") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"--config {path!r} must hold a JSON object of config fields, got "
                             f"{type(data).__name__}.")
    return data


def _label_list(labels: tuple[str, ...], extra: tuple[str, ...]) -> list[Any] | None:
    """Labels from ``-l`` flags and arguments (space- or comma-separated); None when none was given."""
    from ..engine.request import is_integer_text

    if not labels and not extra:
        return None
    out: list[Any] = []
    for item in labels + extra:
        tokens = item.replace(",", " ").split()
        if not tokens:
            raise InvalidRequest(f"Empty label {item!r}: give a class index or name, or leave --labels out for "
                                 f"random classes.")
        out.extend(int(t) if is_integer_text(t) else t for t in tokens)
    return out


@cli.command()
@_generation_options
@click.option("--out", "-O", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the PNGs and manifest.json; must be new or empty unless --overwrite.")
@click.option("--overwrite", is_flag=True, help="Empty a non-empty --out folder's earlier results first.")
@click.option("--npz", is_flag=True, help="Also write samples.npz (ADM format) into the folder.")
def generate(extra_labels: tuple[str, ...], labels: tuple[str, ...], out: str, overwrite: bool, npz: bool,
             **kw: Any) -> None:
    """Generate images into a folder, with a JSON manifest that reproduces the run."""
    from ..engine.outputs import prepare_output_folder

    prepare_output_folder(out, overwrite, check_only=True)  # before any work: a refused folder costs nothing
    result = _run_generation(labels=_label_list(labels, extra_labels), **kw)
    paths = result.save(out, overwrite=overwrite)
    if npz:
        from ..eval.npz import write_npz

        write_npz(f"{out}/samples.npz", _uint8(result.images), result.labels)
    click.echo(f"wrote {len(paths)} image(s) and manifest.json to {out} "
               f"({result.timings['total_s']:.2f} s, NFE/image {sum(result.nfe) / len(result.nfe):g})")


@cli.command()
@_generation_options
@click.option("--out", "-O", default="samples.npz", show_default=True, type=click.Path(dir_okay=False),
              help="ADM-format .npz (arr_0 images, arr_1 labels); the manifest goes beside it as .json, the shards "
                   "of an unfinished run in a .shards folder.")
@click.option("--shard-size", type=click.IntRange(min=1), default=None,
              help="Images per shard, the unit of work and of resumption (default: 8 batches).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out, or shards of another configuration.")
def sample(extra_labels: tuple[str, ...], labels: tuple[str, ...], out: str, shard_size: int | None,
           overwrite: bool, **kw: Any) -> None:
    """Generate many images into one ADM .npz for `genloom eval`, resumably and on any number of processes
    (`accelerate launch -m genloom sample ...`). Labels default to a balanced cycle over the classes; image i uses
    seed + i, so the set is byte-identical for any number of processes (keep --batch-size, or pass
    --batch-invariant, to get the same bytes across batch sizes too)."""
    from ..engine.images import pil_to_uint8
    from ..engine.options import parse_key_values
    from ..sample_run import run

    plan = _sample_plan(out, shard_size, _label_list(labels, extra_labels), kw)
    option_values = parse_key_values(kw["options"], "--option")
    pipe = _load_pipeline(kw["model"], kw["weights"], kw["vae"], kw["config_file"], kw["load_options"],
                          kw["device"], kw["dtype"])
    request = dict(guidance=kw["guidance"], guidance_scale=kw["scale"], sampler=kw["sampler"], steps=kw["steps"],
                   batch_size=kw["batch_size"], batch_invariant=kw["batch_invariant"], **option_values)
    pipe.check(labels=plan.labels, num_images=None if plan.labels else plan.num_images, **request)  # before work

    def generate(idx: Any, shard_labels: list[int] | None, first_seed: int) -> tuple[Any, Any, dict[str, Any]]:
        result = pipe(labels=shard_labels, num_images=None if shard_labels else len(idx), seed=first_seed, **request)
        return pil_to_uint8(result.images), result.labels, result.manifest

    from tqdm.auto import tqdm

    from ..engine.devices import process_state

    main_process = process_state().is_main_process  # one bar for the whole set, on the main process
    bar = tqdm(total=plan.num_images, desc=kw["model"], unit="img", disable=None if main_process else True)

    def progress(done: int, total: int) -> None:
        bar.n = min(plan.num_images, done * plan.shard_size)
        bar.refresh()

    try:
        run(out, plan, generate, overwrite=overwrite, log=lambda m: click.echo(m, err=True), progress=progress)
    finally:
        bar.close()


def _sample_plan(out: str, shard_size: int | None, label_list: list[Any] | None, kw: dict[str, Any]) -> Any:
    """The run's plan: balanced labels by default, the seed of an unfinished run when none is given."""
    from ..sample_run import SamplePlan, work_folder

    n = kw["num_images"]
    if n is not None and n < 1:
        raise InvalidRequest(f"--num-images must be at least 1, got {n}.")
    spec = _engine().models[kw["model"]]
    if label_list is not None:
        label_list = [spec.class_names.index(x) if isinstance(x, str) and x in spec.class_names else x
                      for x in label_list]
        label_list = [label_list[i % len(label_list)] for i in range(n or len(label_list))]
    elif spec.num_classes:
        label_list = [i % spec.num_classes for i in range(n or 1)]
    count = len(label_list) if label_list is not None else (n or 1)
    seed = kw["seed"]
    if seed is None:
        plan_file = work_folder(out) / "plan.json"
        try:
            seed = int(json.loads(plan_file.read_text())["seed"])
        except (OSError, ValueError, KeyError, TypeError):
            import secrets

            seed = secrets.randbelow(2**31 - count)
    size = shard_size or 8 * (kw["batch_size"] or 16)
    load = {"config": _read_config(kw["config_file"]), "vae": kw["vae"], "load_options": list(kw["load_options"]),
            "dtype": kw["dtype"]}
    request = {k: kw[k] for k in ("guidance", "scale", "sampler", "steps", "batch_size", "batch_invariant")}
    request["options"] = list(kw["options"])
    return SamplePlan(model=kw["model"], num_images=count, seed=seed, shard_size=min(size, count),
                      labels=label_list, weights=kw["weights"], load=load, request=request)


def _uint8(images: Any) -> Any:
    from ..engine.images import pil_to_uint8

    return pil_to_uint8(images)


@cli.command("eval")
@click.option("--samples", required=True, type=click.Path(dir_okay=False),
              help="ADM .npz: arr_0 uint8 (N, H, W, 3), arr_1 labels (optional).")
@click.option("--classifier", default="shapes-cnn", show_default=True, help="Classifier (registered name).")
@click.option("--classifier-weights", default=None, help="Weights for the classifier (a folder for 'transformers').")
@click.option("--reference", default="test", show_default=True,
              help="Real images: a shapes split (train/val/test) or an ADM .npz.")
@click.option("--num-reference", default=5000, show_default=True, type=click.IntRange(min=2),
              help="Reference images to use.")
@click.option("--subsets", default=5, show_default=True, type=click.IntRange(min=1),
              help="Disjoint subsets for FD mean ± std.")
@click.option("--k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Neighbours for precision/recall manifolds.")
@click.option("--inception-weights", default=None, type=click.Path(dir_okay=False),
              help="Also compute standard FID/IS (torchmetrics) with these Inception weights (never downloaded).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate_command(samples: str, classifier: str, classifier_weights: str | None, reference: str,
                     num_reference: int, subsets: int, k: int, inception_weights: str | None, as_json: bool) -> None:
    """Score generated samples: class accuracy, FD and precision/recall in a classifier's feature space."""
    from ..eval.scoring import evaluate_npz, reference_uint8

    report = evaluate_npz(samples, classifier=classifier, classifier_weights=classifier_weights,
                          reference=reference, num_reference=num_reference, subsets=subsets, k=k, engine=_engine())
    extra = {}
    if inception_weights is not None:  # torchmetrics' FID/IS take the images whole
        import torch

        from ..eval.inception import inception_metrics
        from ..eval.npz import read_npz

        images, _ = read_npz(samples)

        ref_images = reference_uint8(reference, num_reference)
        extra = inception_metrics(torch.from_numpy(images).permute(0, 3, 1, 2),
                                  torch.from_numpy(ref_images).permute(0, 3, 1, 2), inception_weights)
    if as_json:
        click.echo(json.dumps({**report.to_dict(), **extra}, indent=2))
        return
    names = tuple(_engine().classifiers[classifier].class_names)
    click.echo(report.table(names))
    for key, value in extra.items():
        click.echo(f"{key:<18} {value:.4f}")


@cli.group()
def data() -> None:
    """The embedded shapes dataset."""


@data.command()
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--rows", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--zoom", default=3, show_default=True, type=click.IntRange(min=1), help="Pixel zoom of each image.")
@click.option("--out", default="shapes_preview.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def preview(split: str, rows: int, start: int, zoom: int, out: str, overwrite: bool) -> None:
    """Save a grid: one column per class, ``rows`` examples each."""
    from ..data.grid import save_grid
    from ..data.shapes import NUM_CLASSES, render
    from ..engine.outputs import check_output_file

    check_output_file(out, overwrite)

    images, _ = render(split, start, rows * NUM_CLASSES)
    save_grid(images, out, columns=NUM_CLASSES, zoom=zoom)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--unwrap", multiple=True, help="Nested key holding the state dict (e.g. --unwrap ema --unwrap model).")
@click.option("--overwrite", is_flag=True, help="Replace an existing TARGET (never the SOURCE itself).")
def convert(source: str, target: str, unwrap: tuple[str, ...], overwrite: bool) -> None:
    """Convert a legacy .pth/.pt/.bin checkpoint to .safetensors (read with weights_only=True)."""
    from ..engine import weights
    from ..engine.outputs import check_output_file

    if Path(target).resolve() == Path(source).resolve():
        raise InvalidRequest(f"TARGET is the SOURCE ({source!r}); converting in place would destroy it. Name "
                             f"another file, e.g. {Path(source).with_suffix('.safetensors').name!r}.")
    if Path(target).suffix != ".safetensors":
        raise InvalidRequest(f"TARGET {target!r} should end in .safetensors (the format convert writes).")
    check_output_file(target, overwrite)

    sd = weights.read_state_dict(source, unwrap=unwrap)
    meta = {"converted_from": source.rsplit("/", 1)[-1], "source_sha256": weights.sha256_file(source)}
    out = weights.save_state_dict(sd, target, metadata=meta)
    click.echo(f"wrote {len(sd)} tensors to {out} (sha256 {weights.sha256_file(out)[:16]}…)")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", type=int, default=None, help="Port (default: Gradio's, the first free from 7860).")
@click.option("--share", is_flag=True, help="Also open a public Gradio share link (off by default).")
@click.option("--per-model", default=1, show_default=True, type=click.IntRange(min=1),
              help="Jobs one model runs at a time (others queue).")
@click.option("--weights-root", default=None, type=click.Path(exists=True, file_okay=False),
              help="Weights/VAE paths typed into the page must lie in this folder (required to type paths when "
                   "served beyond 127.0.0.1).")
def ui(host: str, port: int | None, share: bool, per_model: int, weights_root: str | None) -> None:
    """Start the Gradio app: generate, compare policies, edit, inspect plugins (needs the [ui] extra)."""
    try:
        from ..ui.app import launch
    except ImportError as exc:  # gradio missing
        raise click.ClickException(f"The UI needs Gradio: pip install 'genloom[ui]' ({exc}).") from None
    launch(host=host, port=port, share=share, per_model=per_model, weights_root=weights_root)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    for row in (header, *rows):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="genloom")


if __name__ == "__main__":
    main()
