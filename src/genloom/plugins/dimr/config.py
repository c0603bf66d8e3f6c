"""DiMR configurations: any stage layout the official code builds, the released ImageNet-256 models, and
inference of everything a checkpoint's shapes determine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from ...engine.errors import WeightsError

BLOCK_TYPES = {"transformer": "transformer", "TransformerBlock": "transformer",
               "convnext": "convnext", "ConvNeXtBlock": "convnext"}
NORM_TYPES = ("TDRMSN", "TDLN")


@dataclass(frozen=True)
class StageConfig:
    """One branch. ``num_blocks`` as in the official config (2·⌊n/2⌋ + 1 blocks are built);
    ``image_input_ratio``: area down-sampling of the input; ``input_feature_ratio``: the patchify conv's stride."""

    block_type: str
    dim: int
    hidden_dim: int
    num_blocks: int
    max_height: int
    max_width: int
    num_heads: int = 0
    kernel_size: int = 7
    image_input_ratio: int = 1
    input_feature_ratio: int = 1
    final_kernel_size: int = 3

    def __post_init__(self) -> None:
        if self.block_type not in BLOCK_TYPES:
            raise WeightsError(f"Unknown DiMR block_type {self.block_type!r}; use one of {sorted(set(BLOCK_TYPES))}.")
        object.__setattr__(self, "block_type", BLOCK_TYPES[self.block_type])
        if self.block_type == "transformer" and (self.num_heads < 1 or self.dim % self.num_heads):
            raise WeightsError(f"A Transformer stage of width {self.dim} needs num_heads dividing it, "
                               f"got {self.num_heads}.")

    @property
    def built_blocks(self) -> int:
        return 2 * (self.num_blocks // 2) + 1

    @property
    def handoff_channels(self) -> int:
        return self.dim * (self.built_blocks + 1)


@dataclass(frozen=True)
class DiMRConfig:
    """A whole DiMR network, lowest resolution first. ``num_classes`` counts the null class (official 1001 with
    null label 1000); ``num_classes = 1`` is an unconditional model (only the null row)."""

    stages: tuple[StageConfig, ...]
    channels: int = 4
    num_classes: int = 1001
    norm_type: str = "TDRMSN"

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise WeightsError("A DiMR config needs at least one stage.")
        if self.norm_type not in NORM_TYPES:
            raise WeightsError(f"DiMR norm_type {self.norm_type!r} is not supported; use one of {NORM_TYPES}.")
        for prev, nxt in zip(self.stages, self.stages[1:]):
            if nxt.max_height % prev.max_height or nxt.max_height // prev.max_height != nxt.max_width // prev.max_width:
                raise WeightsError(f"Stage sizes must grow by one integer ratio: {prev.max_height}×{prev.max_width} "
                                   f"→ {nxt.max_height}×{nxt.max_width}.")

    @property
    def null_label(self) -> int:
        return self.num_classes - 1

    @property
    def input_size(self) -> int:
        """Side of the network input (latent or pixels)."""
        last = self.stages[-1]
        return last.max_height * last.input_feature_ratio * last.image_input_ratio


def official_2r(dim: int, heads: int, blocks0: int, blocks1: int) -> DiMRConfig:
    return DiMRConfig(stages=(
        StageConfig("transformer", dim, 2 * dim, blocks0, 16, 16, num_heads=heads, input_feature_ratio=2),
        StageConfig("convnext", dim // 2, dim, blocks1, 32, 32, kernel_size=7),
    ))


OFFICIAL = {"dimr-xl-2r": official_2r(960, 16, 39, 20), "dimr-g-2r": official_2r(1152, 16, 57, 29)}


def infer_dimr_config(sd: Mapping[str, torch.Tensor], num_heads: int | None = None,
                      norm_type: str | None = None) -> DiMRConfig:
    """Everything but the Transformer stages' head count follows from shapes; heads default to 16 when the
    width matches a released model, else they must be given (config= or num_heads=)."""
    stages = []
    s = 0
    while f"stages.{s}.input_layer.1.weight" in sd:
        p = f"stages.{s}."
        conv = sd[p + "input_layer.1.weight"]
        dim, channels, ratio = conv.shape[0], conv.shape[1], conv.shape[2]
        built = len({k.split(".")[3] for k in sd if k.startswith(p + "blocks.")})
        transformer = f"{p}blocks.0.block1.query_key_value.weight" in sd
        hidden = sd[p + "blocks.0.block2.w0.weight"].shape[0]
        positions = sd[p + "input_layer.3.position_embeddings.weight"].shape[0]
        side = int(round(positions ** 0.5))
        if side * side != positions:
            raise WeightsError(f"Cannot infer a non-square position table ({positions} rows) of stage {s}; "
                               f"pass config=DiMRConfig(...).")
        heads = 0
        if transformer:
            heads = num_heads or (16 if dim in (960, 1152) else 0)
            if not heads:
                raise WeightsError(f"The checkpoint's shapes do not fix the head count of stage {s} (width {dim}); "
                                   f"pass num_heads= or config=DiMRConfig(...).")
        kernel = sd[p + "blocks.0.block1.1.weight"].shape[-1] if not transformer else 7
        final = sd[p + "output_layer.2.weight"].shape[-1]
        stage = StageConfig("transformer" if transformer else "convnext", dim, hidden, built, side, side,
                            num_heads=heads, kernel_size=kernel, input_feature_ratio=ratio, final_kernel_size=final)
        stages.append(stage)
        s += 1
    if not stages:
        raise WeightsError("This is not a DiMR checkpoint: no 'stages.0.input_layer.1.weight'.")
    # the input size is fixed by the last stage; earlier stages down-sample it by image_input_ratio
    last = stages[-1]
    size = last.max_height * last.input_feature_ratio
    fixed = []
    for stage in stages:
        ratio = size // (stage.max_height * stage.input_feature_ratio)
        fixed.append(replace(stage, image_input_ratio=max(ratio, 1)))
    classes = next((v.shape[0] for k, v in sd.items() if k.endswith("class_embeds.weight")), 1)
    if norm_type is None:
        norm_type = "TDLN" if any(".block2.norm.weight.param0" in k for k in sd) else "TDRMSN"
    return DiMRConfig(stages=tuple(fixed), channels=channels, num_classes=classes, norm_type=norm_type)
