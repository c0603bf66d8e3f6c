"""VAR as a genloom model: the transformer and the VQVAE behind the next-scale protocol, and its loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from ...engine import weights
from ...engine.errors import WeightsError
from ...engine.model import GenerativeModel
from .config import VARConfig, check_patch_nums, infer_var_config, infer_vqvae_config
from .transformer import VARTransformer
from .vqvae import VQVAE


@dataclass
class VARModel(GenerativeModel):
    """Implements :class:`genloom.samplers.next_scale.NextScaleModel`."""

    @property
    def var(self) -> VARTransformer:
        return self.networks["var"]  # type: ignore[return-value]

    @property
    def vae(self) -> VQVAE:
        return self.networks["vae"]  # type: ignore[return-value]

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.config.patch_nums

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def latent_channels(self) -> int:
        return self.config.cvae

    def kv_caching(self, enabled: bool) -> None:
        self.var.kv_caching(enabled)

    def keep_rows(self, index: torch.Tensor) -> None:
        self.var.keep_rows(index)

    def add_rows(self, tokens: torch.Tensor, cond: torch.Tensor) -> None:
        self.var.add_rows(tokens, cond)

    def first_stage(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.var.first_stage(labels)

    def stage_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.var.stage_logits(tokens, cond)

    def prefix_logits(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.var.prefix_logits(tokens, cond)

    def codebook(self) -> torch.Tensor:
        return self.vae.quantize.embedding.weight

    def next_input(self, k: int, f_hat: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.quantize.next_input(k, f_hat, h)

    def stage_tokens(self, k: int, next_map: torch.Tensor) -> torch.Tensor:
        return self.var.stage_tokens(k, next_map)

    def decode(self, f_hat: torch.Tensor) -> torch.Tensor:
        return self.vae.fhat_to_img(f_hat)

    def prepare_edit(self, image: torch.Tensor, mask: torch.Tensor, blend: bool = True) -> Any:
        """Source image (1, 3, H, W) in [-1, 1] and keep-mask (H, W) → the sampler's per-scale edit plan;
        ``blend`` pastes the kept source pixels back after decoding (the VQVAE alone changes them)."""
        from ...samplers.next_scale import EditPlan, keep_masks

        with torch.inference_mode():
            indices = self.vae.img_to_indices(image.to(device=self.device, dtype=self.dtype))
        return EditPlan(indices=[i.cpu() for i in indices], keep=keep_masks(mask, self.patch_nums),
                        source=image.float().cpu() if blend else None, pixel_keep=(mask > 0.5) if blend else None)


def _vae_state(sd: dict[str, torch.Tensor], config: VARConfig) -> dict[str, torch.Tensor]:
    """The VQVAE's training-only usage buffer is (K, V) for the K it was trained with; take ours when K differs
    (as the official loader does), without mutating the caller's dict."""
    key = "quantize.ema_vocab_hit_SV"
    want = (len(config.patch_nums), config.vae.vocab_size)
    if key in sd and tuple(sd[key].shape) != want:
        sd = dict(sd)
        sd[key] = torch.zeros(want)
    return sd


def load_var(var_sd: Mapping[str, torch.Tensor], vae_sd: Mapping[str, torch.Tensor], config: VARConfig | None,
             device: Any = "cpu", dtype: torch.dtype | None = None,
             kernels: Any = None) -> tuple[VARTransformer, VQVAE, VARConfig]:
    """Build both networks on the meta device from official-layout state dicts, strictly checked."""
    var_sd, vae_sd = weights.float32_state(var_sd), weights.float32_state(vae_sd)
    if config is None:
        config = infer_var_config(var_sd, infer_vqvae_config(vae_sd))
    elif not isinstance(config, VARConfig):
        raise WeightsError(f"config= for VAR must be a genloom VARConfig, got {type(config).__name__}.")
    check_patch_nums(config.patch_nums)
    if config.vae.patch_nums != config.patch_nums:
        config = replace(config, vae=replace(config.vae, patch_nums=config.patch_nums))
    vae = weights.build_and_load(lambda: VQVAE(config.vae, kernels), _vae_state(dict(vae_sd), config), device=device,
                                 dtype=dtype, what="VQVAE checkpoint")
    var = weights.build_and_load(lambda: VARTransformer(config, kernels), var_sd, device=device, dtype=dtype,
                                 what="VAR checkpoint")
    return var, vae, config
