"""`genloom calibrate linear-ag`: fit the LinearAG table of a model, sampler, step count and scale."""

from __future__ import annotations

import click


@click.command("linear-ag")
@click.option("--model", "-m", required=True, help="Model name (see `genloom models`).")
@click.option("--weights", default=None, help="Its checkpoint, if not the model's default.")
@click.option("--load-option", "-L", "load_options", multiple=True, help="Family load option KEY=VALUE.")
@click.option("--sampler", required=True, help="The first-order sampler the table is for (e.g. ddim).")
@click.option("--steps", required=True, type=click.IntRange(min=4), help="Its number of steps.")
@click.option("--scale", required=True, type=float, help="The CFG scale w the table is for.")
@click.option("--num", default=200, show_default=True, type=click.IntRange(min=1),
              help="Calibration trajectories (balanced labels).")
@click.option("--k-full", default=2, show_default=True, type=click.IntRange(min=1),
              help="Full-CFG steps before the first estimated one.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--out", "-O", required=True, type=click.Path(dir_okay=False), help="Where to write the table.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def calibrate_linear_ag(model: str, weights: str | None, load_options: tuple[str, ...], sampler: str, steps: int,
                        scale: float, num: int, k_full: int, seed: int, out: str, overwrite: bool) -> None:
    """Fit LinearAG's per-step coefficients on full-CFG trajectories and write them as a safetensors table."""
    from ...engine.engine import default_engine
    from ...engine.options import parse_key_values
    from ...engine.outputs import check_output_file
    from .linear_ag import calibrate

    check_output_file(out, overwrite)
    pipe = default_engine().load(model, weights=weights, **parse_key_values(load_options, "--load-option"))
    table = calibrate(pipe, sampler=sampler, steps=steps, scale=scale, num=num, seed=seed, k_full=k_full,
                      log=lambda m: click.echo(m, err=True))
    table.save(out)
    fitted = [(i, float(r)) for i, r in enumerate(table.r2) if bool(table.replace[i])]
    click.echo(f"wrote {out}: {len(fitted)} estimated steps, R² " + ", ".join(f"step {i}: {r:.4f}" for i, r in fitted))
