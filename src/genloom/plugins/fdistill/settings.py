"""Settings of `genloom distill` (torch-free: the CLI builds its options from them). Defaults follow FastGen's
f-distill configs (spec §4.10) where a tiny CPU run allows: JS, student update every 5th iteration, GAN weight
3e-3, ratio clamp [0.1, 20] in 10 time bins; the learning rate, the batch and the bins' EMA (0.9: a batch of 32
has ~3 samples per bin) are the shapes recipe's."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...diffusion_settings import PER_LEG, device_setting, max_minutes_setting


@dataclass
class DistillSettings:
    teacher: str = field(default="lamamba-shapes", metadata={
        "help": "Registered diffusion model to distil (`genloom models`)."})
    teacher_weights: str | None = field(default=None, metadata={
        "help": "The teacher's weights (default: its registered ones)."})
    teacher_option: tuple[str, ...] = field(default=(), metadata={
        "help": "A load option of the teacher, KEY=VALUE (repeatable), e.g. vae=PATH."})
    divergence: str = field(default="js", metadata={
        "help": "reverse-kl (rkl), softened-reverse-kl (sf), js, squared-hellinger (sh), forward-kl (fkl), "
                "jeffreys (jf)."})
    guidance_scale: float | None = field(default=None, metadata={
        "help": "The teacher's CFG strength w baked into the student (default: the scale of the teacher's default "
                "CFG, alone or leading its default stack; 1: none)."})
    guide_weights: str | None = field(default=None, metadata={
        "help": "An autoguidance guide baked in beside the CFG: a weaker checkpoint of the teacher (default: the "
                "guide of the teacher's default stack when it has autoguidance; 'none': no guide)."})
    guide_scale: float | None = field(default=None, metadata={
        "help": "Autoguidance strength of the baked guide (default: the teacher's default stack's "
                "autoguidance.scale)."})
    cfg_stop: float | None = field(default=None, metadata={
        "help": "Bake CFG in only at t ≥ (1 − cfg_stop)·T, the noise range a sampler's first cfg_stop of its steps "
                "covers (default: the stop of the teacher's default CFG window, else 1: everywhere)."})
    seed: int = field(default=0, metadata={"help": "Seed of the initialisation and of every draw."})
    steps: int = field(default=2000, metadata={
        "help": "Iterations in all (legs add up to this); every --student-update-freq-th updates the student."})
    batch_size: int = field(default=32, metadata={"help": "Global batch per iteration (split over processes)."})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate of the student."})
    critic_lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate of the fake score and the head."})
    class_lr_mult: float = field(default=1.0, metadata={
        "help": "Learning-rate multiplier of the student's label table (the embedding with a row per class): the "
                "label's leverage when classes collapse onto one shape."})
    student_update_freq: int = field(default=5, metadata={
        "help": "One student step per this many iterations (the others train the fake score and the head)."})
    critic_warmup: int = field(default=0, metadata={
        "help": "Iterations at the start that train only the fake score and the head, the student waiting: a run "
                "from --init-student starts them afresh, and until they have caught up the student's gradient is "
                "theirs to get wrong."})
    gan_weight: float = field(default=3e-3, metadata={
        "help": "λ_G: weight of the student's GAN term (must be > 0: the head supplies the density ratio)."})
    disc_weight: float = field(default=1.0, metadata={"help": "Weight of the head's loss in the critic step."})
    regression_pairs: int = field(default=0, metadata={
        "help": "Teacher samples the student also regresses onto (DMD's regression loss, Yin et al. 2024; not part "
                "of f-distill): N noises drawn once, sampled by the teacher with its default sampler and the "
                "guidance the student bakes in, written to the output folder and reused by --resume (0: off)."})
    regression_weight: float = field(default=0.25, metadata={
        "help": "Weight of the regression loss (MSE to the teacher's sample from the same noise, in the teacher's "
                "input space) when --regression-pairs is on."})
    t_min: float = field(default=0.02, metadata={"help": "Lowest noise time of the matching loss (fraction of T)."})
    t_max: float = field(default=0.98, metadata={"help": "Highest noise time of the matching loss (fraction of T)."})
    ratio_bins: int = field(default=10, metadata={"help": "Time bins of the per-noise-level ratio normalisation."})
    ratio_ema: float = field(default=0.9, metadata={
        "help": "EMA of the per-bin ratio means (0: the current batch's, FastGen's default for batches of 512+; "
                "with a few samples per bin that divides every ratio by itself)."})
    ema: float = field(default=0.995, metadata={"help": "EMA decay of the saved student (per student step)."})
    init_student: str | None = field(default=None, metadata={
        "help": "Start the student (and its EMA) from this student file of the same teacher: a new run (fresh fake "
                "score, head and draws) whose files count the earlier iterations too — to go on from a kept student "
                "when its resumable state is gone, or with another divergence or guidance (DMD2 resumed a non-GAN "
                "run this way). A --resume does not take it over (the state records the run's origin).",
        PER_LEG: True})
    data: str = field(default="shapes", metadata={
        "help": "Real images for the head: 'shapes' (the embedded training split) or an ADM .npz with labels."})
    data_size: int = field(default=10_000, metadata={"help": "Real images to encode (first N)."})
    checkpoint_every: int = field(default=250, metadata={
        "help": "Write the EMA student and a resumable state every N iterations (0: only at the end)."})
    device: str | None = device_setting()
    max_minutes: float = max_minutes_setting()


#: settings a resumed run must share with the state it continues (the rest, e.g. --steps, may change)
SAME_RUN = ("teacher", "teacher_weights_sha256", "teacher_option", "divergence", "guidance_scale", "baked_guide",
            "batch_size", "seed", "student_update_freq", "ratio_bins", "t_min", "t_max", "data", "data_size",
            "class_lr_mult", "regression_pairs", "critic_warmup")
#: settings added after states were written: the value such a state ran with
SINCE = {"class_lr_mult": 1.0, "regression_pairs": 0, "critic_warmup": 0}
#: the safetensors metadata key of a student file (the teacher, its options, the divergence, w)
METADATA_KEY = "genloom_fdistill"
