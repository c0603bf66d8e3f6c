"""Settings of the diffusion trainers, `genloom train dimr` and `genloom train lamamba` (torch-free: the CLI
builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the metadata key of a setting chosen anew for each leg: a ``--resume`` leg does not take it from the state
PER_LEG = "per_leg"


def device_setting() -> Any:
    """The ``--device`` setting every in-repo trainer shares (declared once); each leg picks its own device."""
    return field(default=None, metadata={
        "help": "cpu, cuda, cuda:N (default: the device accelerate gives this process — a GPU when there is one). "
                "Random draws stay on the CPU, so a run is the same sequence of batches on any device.",
        PER_LEG: True})


def max_minutes_setting() -> Any:
    """The ``--max-minutes`` leg length every resumable trainer shares (declared once)."""
    return field(default=100.0, metadata={
        "help": "Stop this leg after this long (writing a resumable state); continue with --resume.", PER_LEG: True})

#: the noise schedule of the embedded diffusion recipe (32 px shapes or their 8×8 latents): cosine betas and the v
#: target, NoiseSchedule fields (the released models keep their own: DiMR scaled-linear ε, LaMamba DiT's)
SHAPES_NOISE = {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "v"}


@dataclass
class DiffusionTrainSettings:
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation and of the data order."})
    steps: int = field(default=6000, metadata={"help": "Optimisation steps in all (legs add up to this)."})
    batch_size: int = field(default=64, metadata={"help": "Images per step."})
    train_size: int = field(default=20_000, metadata={"help": "Training images rendered from the shapes dataset."})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (warm-up, then cosine decay)."})
    class_lr_mult: float = field(default=10.0, metadata={
        "help": "Learning-rate multiplier of the class embeddings (no weight decay on them)."})
    ema: float = field(default=0.999, metadata={"help": "EMA decay of the saved weights."})
    cond_drop: float = field(default=0.1, metadata={"help": "Fraction of labels dropped to the null class (CFG)."})
    coarse_weight: float = field(default=0.25, metadata={
        "help": "Loss weight of the coarser stages' outputs (multi-resolution families: DiMR)."})
    time_shift_mean: float | None = field(default=1.0, metadata={
        "help": "Logit-normal timestep sampling: mean of logit(k/1000) (positive: toward high noise, where the "
                "outline is decided); unset: uniform timesteps."})
    time_shift_std: float = field(default=1.0, metadata={"help": "Std of the logit-normal timestep sampling."})
    min_snr_gamma: float | None = field(default=None, metadata={
        "help": "Min-SNR-γ loss weighting (down-weights high noise); unset: the plain v-loss."})
    vae: str | None = field(default=None, metadata={
        "help": "Train in the latent space of this AutoencoderKL (shapes_ae.safetensors from "
                "`genloom train autoencoder`); unset: pixel space."})
    width_divisor: int = field(default=1, metadata={
        "help": "Divide the network's widths by this (heads kept): a smaller network of the same family, e.g. an "
                "autoguidance guide (1: the embedded size)."})
    init: str | None = field(default=None, metadata={
        "help": "Start the network and its EMA from these weights (e.g. an earlier run's EMA file, whose optimiser "
                "state is lost) with a fresh optimiser and learning-rate schedule; unset: a new initialisation. A "
                "--resume does not take it over (the state holds the weights).", PER_LEG: True})
    checkpoint_every: int = field(default=500, metadata={
        "help": "Write the EMA weights and a resumable state every N steps (0: only at the end)."})
    diagnose_every: int = field(default=500, metadata={
        "help": "Print the x̂0 error with the right, null and a wrong label at several noise levels every N steps "
                "(0: never)."})
    stop_without_gap_at: int = field(default=0, metadata={
        "help": "Stop early if at this step the right label does not lower the x̂0 error by 1 % over a wrong one "
                "(0: never)."})
    device: str | None = device_setting()
    max_minutes: float = max_minutes_setting()
