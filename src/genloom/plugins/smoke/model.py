"""Loading the smoke generator and driving it as a one-step model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.model import GenerativeModel
from .network import SmokeConfig, SmokeGenerator, config_from_state_dict


@dataclass
class SmokeModel(GenerativeModel):
    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.config.z_dim,)

    def generate(self, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        assert labels is not None
        return self.networks["generator"](noise, labels)


def build(options: Any) -> SmokeModel:
    if options.weights is None:
        raise WeightsError("The smoke model needs weights; its default is the embedded asset smoke.safetensors.")
    sd = weights.read_state_dict(options.weights.path)
    if "class_embed.weight" not in sd or "to_rgb.weight" not in sd:
        weights.check_state_dict(weights.expected_shapes(SmokeGenerator()), sd, "smoke checkpoint")
    config = options.config or config_from_state_dict(sd)
    if not isinstance(config, SmokeConfig):
        raise WeightsError(f"config= for the smoke model must be a SmokeConfig, got {type(config).__name__}.")
    net = weights.build_and_load(lambda: SmokeGenerator(**asdict(config)), sd, device=options.device,
                                 dtype=options.dtype, what="smoke checkpoint")
    return SmokeModel(spec=options.spec, networks={"generator": net}, weights=[options.weights],
                      config=config)


def make_weights(path: str, seed: int = 0) -> None:
    """Write the embedded asset: fixed random weights from ``seed`` (deterministic)."""
    torch.manual_seed(seed)
    net = SmokeGenerator()
    weights.save_state_dict(net.state_dict(), path, metadata={"model": "smoke", "seed": str(seed)})


if __name__ == "__main__":
    import sys

    make_weights(sys.argv[1] if len(sys.argv) > 1 else "src/genloom/assets/smoke.safetensors")
