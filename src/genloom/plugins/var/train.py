"""Training the embedded default ``var-shapes`` (VQVAE, then the transformer) on the embedded shapes dataset.

CPU-sized: a 32 px VQVAE with an 8×8 latent and six scales, and a small transformer. Reproducible from a seed
at a fixed thread count. The VQVAE loss is the reconstruction MSE plus VAR's multi-scale commitment/codebook
term (β·‖sg(f̂) − f‖² + ‖f̂ − sg(f)‖², averaged over scales) with a straight-through estimator; codes unused over
a window are restarted on encoder outputs (a standard fix for codebook collapse, our choice). The transformer
is trained by teacher forcing with 10 % label dropout to the null class (what CFG needs), at the run's size, in
resumable legs (the trainers' ``--resume`` / ``--max-minutes`` contract).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ...data.shapes import load_split
from ...engine.devices import resolve_device
from ...engine.errors import InvalidRequest, WeightsError
from ...engine.weights import read_state_dict, save_state_dict
from ...training import (
    check_output_folder,
    check_settings,
    cosine_warmup,
    load_initial_weights,
    load_training_state,
    random_batch,
    save_training_state,
    set_learning_rate,
    update_ema,
    with_label_table_group,
    wrong_labels,
)
from .config import VARConfig, VQVAEConfig, infer_var_config
from .settings import VARTrainSettings
from .transformer import VARTransformer
from .vqvae import VQVAE

SHAPES_PATCH_NUMS = (1, 2, 3, 4, 6, 8)
SHAPES_VAE = VQVAEConfig(vocab_size=512, z_channels=16, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1,
                         share_quant_resi=4, patch_nums=SHAPES_PATCH_NUMS, using_sa=False, using_mid_sa=True)
SHAPES_VAR = VARConfig(depth=3, embed_dim=192, num_heads=3, num_classes=10, vocab_size=512, cvae=16,
                       patch_nums=SHAPES_PATCH_NUMS, vae=SHAPES_VAE)


TrainSettings = VARTrainSettings
STEM, VAE_FILE = "var_shapes", "var_shapes_vae.safetensors"
STATE = f"{STEM}_state.safetensors"
#: settings a resumed leg must share with the state it continues (the transformer's configuration and data)
SAME_CONFIGURATION = ("seed", "train_size", "batch_size", "var_lr", "warmup", "cond_drop", "depth", "width", "heads",
                      "class_lr_mult", "scale_balance", "ema")
#: the values states written before a setting existed ran with
SINCE = {"class_lr_mult": 1.0, "scale_balance": 0.0, "ema": 0.0}


def vqvae_loss(vae: VQVAE, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Reconstruction + multi-scale VQ loss; returns (loss, recon MSE, per-scale indices)."""
    q = vae.quantize
    f = vae.encode_latent(x)
    f_ng = f.detach()
    vq, indices = 0.0, []
    for idx, f_hat in q.residual_steps(f):
        vq = vq + beta * F.mse_loss(f_hat.detach(), f) + F.mse_loss(f_hat, f_ng)
        indices.append(idx)
    f_st = (f_hat.detach() - f_ng) + f  # straight-through to the encoder
    recon = vae.decoder(vae.post_quant_conv(f_st))
    mse = F.mse_loss(recon, x)
    return mse + vq / len(q.patch_nums), mse, indices


def train_vqvae(x_train: torch.Tensor, s: TrainSettings, log: Callable[[str], None]) -> VQVAE:
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    device = x_train.device
    vae = VQVAE(SHAPES_VAE).to(device)
    with torch.no_grad():  # codebook starts on encoder outputs of real images
        f = vae.encode_latent(x_train[:256]).permute(0, 2, 3, 1).reshape(-1, SHAPES_VAE.z_channels)
        first = torch.randperm(len(f), generator=gen)[:SHAPES_VAE.vocab_size]  # random draws on the CPU
        vae.quantize.embedding.weight.copy_(f[first.to(device)])
    opt = torch.optim.Adam(vae.parameters(), lr=s.vae_lr, betas=(0.9, 0.95))
    usage = torch.zeros(SHAPES_VAE.vocab_size)
    t0 = time.perf_counter()
    for step in range(s.vae_steps):
        set_learning_rate(opt, s.vae_lr * cosine_warmup(step, s.vae_steps, 100))
        _, x = random_batch(x_train, s.batch_size, gen)
        loss, mse, indices = vqvae_loss(vae, x, s.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for i in indices:
            usage += torch.bincount(i.flatten().cpu(), minlength=SHAPES_VAE.vocab_size).float()
        if (step + 1) % s.restart_every == 0:
            dead = (usage == 0).nonzero().flatten()
            if len(dead) and step + 1 < s.vae_steps * 0.8:
                with torch.no_grad():
                    f = vae.encode_latent(x).permute(0, 2, 3, 1).reshape(-1, SHAPES_VAE.z_channels)
                    pick = torch.randint(len(f), (len(dead),), generator=gen)
                    vae.quantize.embedding.weight[dead.to(device)] = f[pick.to(device)] * 0.5
            log(f"vqvae step {step + 1}/{s.vae_steps}: recon mse {mse.item():.4f}, loss {loss.item():.4f}, "
                f"codes used {(usage > 0).sum().item()}/{SHAPES_VAE.vocab_size}, restarted {len(dead)} "
                f"({time.perf_counter() - t0:.0f} s)")
            usage.zero_()
    return vae.eval()


def _init_var(var: VARTransformer) -> None:
    """A scaled-down version of the official init (spec §3.4)."""
    std = math.sqrt(1 / (3 * var.cfg.embed_dim))
    for m in var.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.trunc_normal_(m.weight, std=std)
            if getattr(m, "bias", None) is not None:
                torch.nn.init.zeros_(m.bias)
    torch.nn.init.trunc_normal_(var.pos_start, std=std)
    torch.nn.init.trunc_normal_(var.pos_1LC, std=std)
    with torch.no_grad():
        var.head.weight.mul_(0.02)
        c = var.cfg.embed_dim
        for block in var.blocks:
            block.attn.proj.weight.div_(math.sqrt(2 * var.cfg.depth))
            block.ffn.fc2.weight.div_(math.sqrt(2 * var.cfg.depth))
            block.ada_lin[-1].weight[2 * c:].mul_(0.5)
            block.ada_lin[-1].weight[:2 * c].mul_(1e-3)


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def shapes_var_config(s: TrainSettings) -> VARConfig:
    """The transformer of a run: the embedded configuration at the run's depth, width and heads."""
    return replace(SHAPES_VAR, depth=s.depth, embed_dim=s.width, num_heads=s.heads)


def _load_init(var: VARTransformer, s: TrainSettings) -> None:
    """``--init`` into the run's transformer; weights of another size are refused naming both sizes."""
    try:
        load_initial_weights(var, s.init, "the var-shapes transformer")
    except InvalidRequest as err:
        try:
            own = infer_var_config(read_state_dict(s.init), SHAPES_VAE)
        except WeightsError:
            raise InvalidRequest(f"{err} (they are not a VAR transformer)") from None
        if (own.depth, own.embed_dim, own.num_heads) == (s.depth, s.width, s.heads):
            raise
        raise InvalidRequest(f"--init {s.init!r} is a transformer of --depth {own.depth} --width {own.embed_dim} "
                             f"--heads {own.num_heads}; this run builds --depth {s.depth} --width {s.width} --heads "
                             f"{s.heads}: give the weights' size.") from None


@dataclass
class TransformerRun:
    """The transformer of a run with its optimiser, data generator and step, ready before any image is rendered (so
    an ``--init`` or ``--resume`` that does not fit is refused first)."""

    var: VARTransformer
    opt: torch.optim.Optimizer
    gen: torch.Generator
    step: int
    ema: VARTransformer | None = None  # the moving average the run writes (``--ema``), or None: the raw weights

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        """What a training state holds."""
        return {"var": self.var, **({"ema": self.ema} if self.ema is not None else {})}

    @property
    def written(self) -> VARTransformer:
        """The weights the run writes and diagnoses."""
        return self.ema if self.ema is not None else self.var


def start_transformer(s: TrainSettings, device: torch.device, resume: str | None,
                      log: Callable[[str], None]) -> TransformerRun:
    """A fresh (seeded, optionally ``--init``) transformer, or the one a ``--resume`` state holds."""
    torch.manual_seed(s.seed + 1)
    gen = torch.Generator().manual_seed(s.seed + 1)
    var = VARTransformer(shapes_var_config(s))
    _init_var(var)
    if s.init and not resume:
        _load_init(var, s)
        log(f"transformer starts from {s.init}")
    var.to(device)
    ema = copy.deepcopy(var).requires_grad_(False) if s.ema else None
    params = with_label_table_group(var, [var.class_emb.weight], s.var_lr, s.class_lr_mult, weight_decay=0.0)
    opt = torch.optim.AdamW(params, lr=s.var_lr, betas=(0.9, 0.95), weight_decay=0.05)
    run = TransformerRun(var, opt, gen, 0, ema)
    if resume:
        run.step = load_training_state(resume, run.modules, opt, gen, asdict(s), SAME_CONFIGURATION, SINCE)
        log(f"resuming the transformer at step {run.step} from {resume}")
    return run


def scale_weights(patch_nums: tuple[int, ...], balance: float) -> torch.Tensor:
    """Per-token loss weights over the ``L`` tokens of all scales, summing to 1: a scale of ``n`` tokens weighs each
    ``∝ n^-balance`` (0: the plain token mean)."""
    counts = torch.tensor([p * p for p in patch_nums], dtype=torch.float64)
    per_token = torch.repeat_interleave(counts.pow(-balance), counts.long())
    return (per_token / per_token.sum()).float()


@torch.no_grad()
def label_gap(var: VARTransformer, vae: VQVAE, x: torch.Tensor, labels: torch.Tensor,
              seed: int = 0) -> dict[int, tuple[float, float, float]]:
    """Teacher-forced token loss per scale (keyed by its side) with the right, the null and a wrong label: a
    transformer that uses its label has right < null < wrong, and the gap at the coarse scales is what decides the
    outline (the shapes class)."""
    n = var.cfg.num_classes
    wrong = wrong_labels(labels, n, torch.Generator().manual_seed(seed))
    indices = vae.img_to_indices(x)
    tf_input = vae.quantize.teacher_forcing_input(indices)
    target, counts = torch.cat(indices, 1), [p * p for p in var.cfg.patch_nums]
    per_label = []
    for lab in (labels, torch.full_like(labels, n), wrong):
        loss = F.cross_entropy(var(lab, tf_input).transpose(1, 2), target, reduction="none").mean(0)
        per_label.append([float(part.mean()) for part in loss.split(counts)])
    return {p: (r, u, w) for p, r, u, w in zip(var.cfg.patch_nums, *per_label)}


def train_transformer(run: TransformerRun, vae: VQVAE, x_train: torch.Tensor, y_train: torch.Tensor,
                      s: TrainSettings, log: Callable[[str], None], out: Path, meta: dict[str, str]) -> bool:
    """Teacher-forced training of the transformer up to ``var_steps``; returns whether it got there (False: the
    leg's ``max_minutes`` ran out and a resumable state was written to ``out``)."""
    var, opt, gen, step = run.var, run.opt, run.gen, run.step
    device, config = x_train.device, var.cfg
    state_path = out / STATE
    token_weights = scale_weights(config.patch_nums, s.scale_balance).to(device)
    probe_x, probe_y = x_train[-256:], y_train[-256:]
    t0 = time.perf_counter()
    while step < s.var_steps:
        set_learning_rate(opt, s.var_lr * cosine_warmup(step, s.var_steps, s.warmup))
        pick, x = random_batch(x_train, s.batch_size, gen)
        with torch.no_grad():
            indices = vae.img_to_indices(x)
            tf_input = vae.quantize.teacher_forcing_input(indices)
        labels = y_train[pick.to(device)].clone()
        labels[(torch.rand(len(labels), generator=gen) < s.cond_drop).to(device)] = config.num_classes
        logits = var(labels, tf_input)
        per_token = F.cross_entropy(logits.transpose(1, 2), torch.cat(indices, 1), reduction="none")  # (B, L)
        loss = (per_token * token_weights).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(var.parameters(), 2.0)
        opt.step()
        if run.ema is not None:
            update_ema(run.ema, var, s.ema, step)
        step += 1
        if step % 100 == 0:
            log(f"var step {step}/{s.var_steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
        if s.diagnose_every and step % s.diagnose_every == 0:
            gaps = label_gap(run.written, vae, probe_x, probe_y)
            log("  token loss right / null / wrong label: " + "; ".join(
                f"{p}×{p}: {r:.3f} / {u:.3f} / {w:.3f}" for p, (r, u, w) in gaps.items()))
        if step >= s.var_steps:
            break
        out_of_time = time.perf_counter() - t0 > 60 * s.max_minutes
        if out_of_time or s.checkpoint_every and step % s.checkpoint_every == 0:
            save_state_dict(run.written.state_dict(), out / f"{STEM}_step{step}.safetensors",
                            metadata={**meta, "step": str(step)})
            save_training_state(state_path, run.modules, opt, gen, step, asdict(s))
        if out_of_time:
            log(f"--max-minutes reached at step {step}; continue with --resume {state_path}")
            var.eval()
            return False
    save_training_state(state_path, run.modules, opt, gen, step, asdict(s))  # a later leg may go on
    var.eval()
    return True


def train_var_shapes(out_dir: str | Path, settings: TrainSettings | None = None, resume: str | None = None,
                     log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """Train both networks and write ``var_shapes.safetensors`` and ``var_shapes_vae.safetensors``; returns their
    paths. A leg whose ``max_minutes`` run out returns the resumable state's path in place of the transformer's.
    The VQVAE is trained whole in the first leg (or given with ``vae``); a ``resume`` leg reads it from the
    state's folder."""
    s = settings or TrainSettings()
    check_settings(s, positive=("train_size", "vae_steps", "var_steps", "batch_size", "vae_lr", "var_lr",
                                "restart_every", "depth", "width", "heads", "max_minutes", "class_lr_mult"),
                   fractions=("cond_drop", "ema"), files=("vae", "init"))
    if not 0 <= s.scale_balance <= 1:
        raise InvalidRequest(f"--scale-balance must be in [0, 1] (0: every token alike, 1: every scale alike), got "
                             f"{s.scale_balance}.")
    if s.width % s.heads:
        raise InvalidRequest(f"--heads {s.heads} does not divide --width {s.width}; pick heads with width % heads "
                             f"== 0 (e.g. --heads {max(1, s.width // 64)}).")
    device = resolve_device(s.device)
    run = start_transformer(s, device, resume, log)  # an --init or --resume that does not fit fails here, first
    out = check_output_folder(out_dir, (f"{STEM}.safetensors", VAE_FILE), resuming=resume is not None)
    vae_file = out / VAE_FILE
    if resume and not vae_file.is_file():
        raise InvalidRequest(f"--resume needs the run's VQVAE {str(vae_file)!r} (the first leg writes it beside the "
                             f"state); continue in the folder of the state, or start afresh with --vae.")
    vae_source = str(vae_file) if resume else s.vae
    vae_sd = read_state_dict(vae_source) if vae_source else None
    if resume and s.vae and not _same_tensors(read_state_dict(s.vae), vae_sd):
        raise InvalidRequest(f"--vae {s.vae!r} is not the VQVAE of the run being resumed ({str(vae_file)!r}); "
                             f"leave --vae out of a --resume leg.")
    log(f"rendering {s.train_size} training images… (training on {device})")
    x_train, y_train = (t.to(device) for t in load_split("train", s.train_size))
    meta = {"model": "var-shapes", **{k: str(v) for k, v in asdict(s).items()}}
    if vae_sd is not None:
        vae = VQVAE(SHAPES_VAE)
        vae.load_state_dict(vae_sd, strict=True)
        vae.to(device).eval()
        log(f"using the VQVAE {vae_source}")
    else:
        vae = train_vqvae(x_train, s, log)
    if not resume:
        save_state_dict(vae.state_dict(), vae_file, metadata=meta)
    for p in vae.parameters():
        p.requires_grad_(False)
    if not train_transformer(run, vae, x_train, y_train, s, log, out, meta):
        return out / STATE, vae_file
    var_path = save_state_dict(run.written.state_dict(), out / f"{STEM}.safetensors", metadata=meta)
    log(f"wrote {var_path} and {vae_file}; --resume {out / STATE} --var-steps N continues it")
    return var_path, vae_file
