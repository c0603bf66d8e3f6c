"""Settings of `genloom train var` (torch-free: the CLI builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...diffusion_settings import PER_LEG, device_setting, max_minutes_setting


@dataclass
class VARTrainSettings:
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation and of the data order."})
    train_size: int = field(default=20_000, metadata={"help": "Training images rendered from the shapes dataset."})
    vae_steps: int = field(default=2000, metadata={"help": "VQVAE optimisation steps."})
    var_steps: int = field(default=3000, metadata={"help": "Transformer optimisation steps."})
    batch_size: int = field(default=32, metadata={"help": "Images per step."})
    vae_lr: float = field(default=1e-3, metadata={"help": "VQVAE peak learning rate."})
    var_lr: float = field(default=1e-3, metadata={"help": "Transformer peak learning rate."})
    depth: int = field(default=3, metadata={"help": "Transformer blocks (the loader reads the size from the "
                                                    "weights)."})
    width: int = field(default=192, metadata={"help": "Transformer width (embedding channels)."})
    heads: int = field(default=3, metadata={"help": "Attention heads (must divide --width)."})
    beta: float = field(default=0.25, metadata={"help": "VQ commitment weight."})
    cond_drop: float = field(default=0.1, metadata={"help": "Fraction of labels dropped to the null class (CFG)."})
    class_lr_mult: float = field(default=1.0, metadata={
        "help": "Learning-rate multiplier of the class embedding (no weight decay on it when not 1): the label's "
                "leverage on the coarse scales, where the outline is decided."})
    scale_balance: float = field(default=0.0, metadata={
        "help": "Loss weight of a scale's tokens ∝ (its token count)^-balance: 0 weighs every token alike (the "
                "official loss), 1 every scale alike; between them the coarse scales count for more."})
    ema: float = field(default=0.0, metadata={
        "help": "EMA decay of the written transformer weights (0: the raw weights); checkpoints of one run swing by "
                "several points of class accuracy, an average of the weights does not."})
    restart_every: int = field(default=100, metadata={"help": "Restart unused codes every N VQVAE steps."})
    diagnose_every: int = field(default=500, metadata={
        "help": "Print the token loss per scale with the right, the null and a wrong label every N steps (0: never)."})
    checkpoint_every: int = field(default=0, metadata={"help": "Also write the transformer and a resumable state "
                                                               "every N steps (0: only at the end)."})
    vae: str | None = field(default=None, metadata={
        "help": "Use this trained VQVAE (skip its training). A --resume leg reads the run's own copy beside the state.",
        PER_LEG: True})
    init: str | None = field(default=None, metadata={
        "help": "Start the transformer from these weights with a fresh optimiser and learning-rate schedule. A "
                "--resume does not take it over (the state holds the weights).", PER_LEG: True})
    warmup: int = field(default=200, metadata={"help": "Transformer learning-rate warm-up steps."})
    device: str | None = device_setting()
    max_minutes: float = max_minutes_setting()
