"""What the benchmark scripts that take any model share: the ``--model/--weights/--vae/-L`` arguments and loading
a pipeline from them (a checkpoint of a family that is not registered by name loads through its family)."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_arguments(parser: argparse.ArgumentParser, default: str = "var-shapes") -> None:
    parser.add_argument("--model", default=default)
    parser.add_argument("--weights", default=None, help="a checkpoint instead of the embedded default")
    parser.add_argument("--vae", default=None, help="its VQVAE / autoencoder checkpoint")
    parser.add_argument("-L", "--load-option", action="append", default=[], help="family load option KEY=VALUE")


def load_model(args: argparse.Namespace) -> Any:
    """The pipeline the arguments name: a registered model, or ``family-…`` / ``family`` with ``--weights``."""
    import genloom
    from genloom.engine.options import parse_key_values

    models = genloom.default_engine().models
    name = args.model
    if name not in models:
        if args.weights is None:  # a family's own defaults (e.g. a hub autoencoder) are not what was named
            raise SystemExit(f"--model {name!r} is not registered ({', '.join(sorted(models))}); "
                             f"give --weights to load a checkpoint of its family {name.split('-')[0]!r}.")
        name = name.split("-")[0]
    extra = parse_key_values(args.load_option, "--load-option")
    if args.vae:
        extra["vae"] = args.vae
    return genloom.load(name, weights=args.weights, **extra)
