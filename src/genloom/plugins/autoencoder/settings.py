"""Settings of `genloom train autoencoder` (torch-free: the CLI builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...diffusion_settings import device_setting, max_minutes_setting

#: shapes-ae: a diffusers AutoencoderKL, 32×32×3 ↔ 8×8×4 (chosen by measurement, see BENCHMARKS.md)
SHAPES_AE_CONFIG = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [32, 64, 64],
                    "layers_per_block": 1, "norm_num_groups": 16, "sample_size": 32,
                    "down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3,
                    "mid_block_add_attention": False}


@dataclass
class AutoencoderSettings:
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation and of the data order."})
    steps: int = field(default=1500, metadata={"help": "Optimisation steps in all (legs add up to this)."})
    batch_size: int = field(default=32, metadata={"help": "Images per step."})
    train_size: int = field(default=20_000, metadata={"help": "Training images rendered from the shapes dataset."})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (warm-up, then cosine decay)."})
    kl_weight: float = field(default=1e-5, metadata={"help": "Weight of the KL term (per-element means)."})
    checkpoint_every: int = field(default=250, metadata={"help": "Write weights and a resumable state every N "
                                                                 "steps (0: only at the end)."})
    device: str | None = device_setting()
    max_minutes: float = max_minutes_setting()
