"""``genloom``: click commands. Listing commands never import torch; generation does, lazily."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..engine.errors import GenloomError


def _engine() -> Any:
    from ..engine.engine import default_engine

    return default_engine()


class _Group(click.Group):
    """Adds plugin-contributed commands, and turns genloom errors into one readable line (exit 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(n for n in _plugin_commands() if n not in names)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None:
            spec = _plugin_commands().get(name)
            cmd = spec.command if spec is not None else None
        return cmd

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
def models(as_json: bool) -> None:
    """Models the loaded plugins provide."""
    specs = list(_engine().models.values())
    if as_json:
        click.echo(json.dumps([
            {"name": s.name, "paradigm": s.paradigm.value, "classes": s.num_classes, "image_size": s.image_size,
             "null_class": s.null_class, "plugin": s.plugin, "default_weights": s.default_weights,
             "description": s.description} for s in specs], indent=2))
        return
    _table(("model", "paradigm", "classes", "resolution", "origin", "description"),
           [(s.name, s.paradigm.value, str(s.num_classes or "-"), f"{s.image_size}px" if s.image_size else "-",
             s.plugin, s.description) for s in specs])


@cli.command()
def samplers() -> None:
    """Sampling loops, by paradigm."""
    _table(("sampler", "paradigm", "origin", "description"),
           [(s.name, s.paradigm.value, s.plugin, s.description) for s in _engine().samplers.values()])


@cli.command()
def policies() -> None:
    """Guidance policies."""
    _table(("policy", "paradigms", "requires", "origin", "description"),
           [(g.name, ",".join(sorted(p.value for p in g.paradigms)), ",".join(sorted(g.requires)) or "-",
             g.plugin, g.description) for g in _engine().guidance.values()])


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@cli.command()
@click.option("--model", "-m", required=True, help="Model name (see `genloom models`).")
@click.argument("extra_labels", nargs=-1, metavar="[LABELS]...")
@click.option("--labels", "-l", multiple=True,
              help="Class indices or names, one per image: --labels 3 7, or -l 3 -l 7, or '3,7'.")
@click.option("--num-images", "-n", type=int, default=None, help="Images to make (default: one per label).")
@click.option("--seed", "-s", type=int, default=0, show_default=True, help="Base seed; image i uses seed + i.")
@click.option("--guidance", "-g", default=None, help="Guidance policy (see `genloom policies`), or 'none'.")
@click.option("--scale", type=float, default=None, help="Guidance scale.")
@click.option("--sampler", default=None, help="Sampler (see `genloom samplers`).")
@click.option("--steps", type=int, default=None, help="Sampling steps.")
@click.option("--batch-size", type=int, default=None, help="Images per forward batch.")
@click.option("--batch-invariant", is_flag=True, help="Run one image at a time: bit-identical to generating alone.")
@click.option("--weights", default=None, help="Checkpoint path, hf://owner/repo/file[@rev] or asset:<name>.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N, mps (default: automatic).")
@click.option("--dtype", default=None, help="fp32 (default), fp16 or bf16.")
@click.option("--option", "-o", "options", multiple=True, help="Extra KEY=VALUE for the sampler or policy.")
@click.option("--out", "-O", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the PNGs and manifest.json.")
def generate(extra_labels: tuple[str, ...], model: str, labels: tuple[str, ...], num_images: int | None, seed: int, guidance: str | None,
             scale: float | None, sampler: str | None, steps: int | None, batch_size: int | None,
             batch_invariant: bool, weights: str | None, device: str | None, dtype: str | None,
             options: tuple[str, ...], out: str) -> None:
    """Generate images into a folder, with a JSON manifest that reproduces the run."""
    from tqdm.auto import tqdm

    label_list: list[Any] = []
    for item in labels + extra_labels:
        label_list.extend(int(t) if t.lstrip("-").isdigit() else t for t in item.replace(",", " ").split())
    pipe = _engine().load(model, weights=weights, device=device, dtype=dtype)
    bars: list[Any] = []  # created at the first step, so a refused request prints no bar

    def on_progress(event: Any) -> None:
        if not bars:
            bars.append(tqdm(total=1000, desc=model, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}"))
        bars[0].n = int(1000 * event.fraction)
        bars[0].refresh()

    try:
        result = pipe(labels=label_list or None, num_images=num_images, seed=seed, guidance=guidance,
                      guidance_scale=scale, sampler=sampler, steps=steps, batch_size=batch_size,
                      batch_invariant=batch_invariant, progress=on_progress, **_parse_options(options))
    finally:
        for bar in bars:
            bar.close()
    paths = result.save(out)
    click.echo(f"wrote {len(paths)} image(s) and manifest.json to {out} "
               f"({result.timings['total_s']:.2f} s, NFE/image {sum(result.nfe) / len(result.nfe):g})")


@cli.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--unwrap", multiple=True, help="Nested key holding the state dict (e.g. --unwrap ema --unwrap model).")
def convert(source: str, target: str, unwrap: tuple[str, ...]) -> None:
    """Convert a legacy .pth/.pt/.bin checkpoint to .safetensors (read with weights_only=True)."""
    from ..engine import weights

    sd = weights.read_state_dict(source, unwrap=unwrap)
    meta = {"converted_from": source.rsplit("/", 1)[-1], "source_sha256": weights.sha256_file(source)}
    out = weights.save_state_dict(sd, target, metadata=meta)
    click.echo(f"wrote {len(sd)} tensors to {out} (sha256 {weights.sha256_file(out)[:16]}…)")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    for row in (header, *rows):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="genloom")


if __name__ == "__main__":
    main()
