"""Kernel timings: every registered kernel's exact reference against the backend ``auto`` picks here (the fast
PyTorch form off CUDA, the Triton kernel on CUDA), per size, with achieved GB/s; then end-to-end sampling with
``GENLOOM_KERNELS=torch`` against ``auto``, alternating in one process (min over repeats): VAR at d16 width with
CFG on random weights, and a DiMR with 25-step DPM-Solver-fast. Prints the device it ran on.

    python benchmarks/kernel_timings.py [--repeats 3] [--var-depth 16] [--var-batch 2] [--dimr-batch 4] [--threads 2]
    smoke mode (CI): --repeats 1 --var-depth 1 --var-batch 1 --dimr-batch 1 --threads 1 --small
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--var-depth", type=int, default=16)
    parser.add_argument("--var-batch", type=int, default=2)
    parser.add_argument("--dimr-batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="tiny kernel sizes (smoke mode)")
    args = parser.parse_args()

    import torch

    from genloom.kernels.dispatch import default_dispatcher

    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"device: {name}")
    kernels = default_dispatcher()

    def best(fn: object) -> float:
        times = []
        for _ in range(args.repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times)

    g = torch.Generator().manual_seed(0)
    r = (lambda *s: torch.randn(*s, generator=g).to(dev))  # noqa: E731
    scan_len = 256 if args.small else 4096
    cases = {
        "selective_scan": [((2, 256, scan_len), lambda s: dict(
            u=r(*s), delta=r(*s), A=-torch.rand(s[1], 1, generator=g).to(dev) - 0.1, B=r(s[0], 4, 1, s[2]),
            C=r(s[0], 4, 1, s[2]), D=r(s[1]), delta_bias=r(s[1]), delta_softplus=True))],
        "modulated_layer_norm": [((32, 680 if not args.small else 16, 1024), lambda s: dict(
            x=r(*s), shift=r(s[0], 1, s[2]), scale=r(s[0], 1, s[2])))],
        "vq_nearest": [((32 * 680 if not args.small else 64, 32), lambda s: dict(z=r(*s), codebook=r(4096, 32)))],
        "guidance_combine": [((8, 680, 4096) if not args.small else (2, 16, 64), lambda s: dict(  # VAR's logits
            cond=r(*s), refs=[r(*s)], scales=torch.full((1, s[0]), 1.5, device=dev), rescale=0.7))],
    }
    print("| kernel | size | reference ms | auto runs | auto ms | speed-up | auto GB/s (inputs + output) |")
    print("|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for kernel, sizes in cases.items():
            for shape, make in sizes:
                kw = make(shape)
                choice = kernels.choose(kernel, **kw)
                kernels(kernel, backend="torch", **kw), choice.implementation(**kw)  # warm-up, untimed
                t_ref = best(lambda: kernels(kernel, backend="torch", **kw))
                t_auto = best(lambda: choice.implementation(**kw))
                out = choice.implementation(**kw)
                tensors = [t for v in kw.values() for t in (v if isinstance(v, list) else [v])]
                moved = sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))
                moved += out.numel() * out.element_size() if isinstance(out, torch.Tensor) else 0
                print(f"| {kernel} | {tuple(shape)} | {t_ref * 1e3:.2f} | {choice.backend} | {t_auto * 1e3:.2f} | "
                      f"{t_ref / t_auto:.2f}× | {moved / t_auto / 1e9:.2f} |")
    print()
    print("| end to end | GENLOOM_KERNELS=torch s | auto s | speed-up |")
    print("|---|---|---|---|")
    for label, run in (("VAR", _var_run(args, dev)), ("DiMR", _dimr_run(args, dev))):
        times = {"torch": [], "auto": []}
        outputs = {}
        run()  # warm-up, untimed
        for _ in range(args.repeats):
            for mode in ("torch", "auto"):
                os.environ["GENLOOM_KERNELS"] = mode
                t0 = time.perf_counter()
                outputs[mode] = run()
                times[mode].append(time.perf_counter() - t0)
        os.environ.pop("GENLOOM_KERNELS", None)
        same = torch.allclose(outputs["torch"], outputs["auto"], atol=1e-4)
        t_torch, t_auto = min(times["torch"]), min(times["auto"])
        print(f"| {label} | {t_torch:.3f} | {t_auto:.3f} | {t_torch / t_auto:.2f}× (outputs equal: {same}) |")


def _var_run(args: argparse.Namespace, dev: object) -> object:
    """VAR with the official width rule (C = 64·depth), 10 scales, random weights, CFG on the ramp."""
    import torch

    from genloom.engine.seeding import ImageRNG
    from genloom.engine.specs import ModelSpec, Paradigm
    from genloom.plugins.guidance.cfg import CFG
    from genloom.plugins.var.config import VARConfig, VQVAEConfig
    from genloom.plugins.var.model import VARModel
    from genloom.plugins.var.transformer import VARTransformer
    from genloom.plugins.var.vqvae import VQVAE
    from genloom.samplers.next_scale import sample_next_scale

    torch.manual_seed(0)
    d = args.var_depth
    vae_cfg = VQVAEConfig(ch=32 if args.small else 160)
    cfg = VARConfig(depth=d, embed_dim=64 * d, num_heads=d, vae=vae_cfg)
    model = VARModel(spec=ModelSpec(name="bench", factory=lambda o: None, paradigm=Paradigm.NEXT_SCALE),
                     networks={"var": VARTransformer(cfg).eval(), "vae": VQVAE(vae_cfg).eval()}, config=cfg)
    model.to(device=dev)
    labels = torch.arange(args.var_batch) % 1000

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return sample_next_scale(model, labels, ImageRNG(list(range(args.var_batch))),
                                     guidance=CFG.create(2.5)).images

    return run


def _dimr_run(args: argparse.Namespace, dev: object) -> object:
    """A small pixel-space DiMR (the sampler tests' shape, 32 px), 25-step DPM-Solver-fast with CFG."""
    import torch

    from genloom.engine.seeding import ImageRNG
    from genloom.engine.specs import ModelSpec, Paradigm
    from genloom.plugins.dimr.config import DiMRConfig, StageConfig
    from genloom.plugins.dimr.model import DiMRModel
    from genloom.plugins.dimr.network import DiMRNetwork
    from genloom.plugins.guidance.cfg import CFG
    from genloom.samplers.dpm_solver_fast import dpm_solver_fast

    torch.manual_seed(0)
    cfg = DiMRConfig(channels=3, num_classes=11, stages=(
        StageConfig("transformer", 128, 256, 5, 8, 8, num_heads=4, input_feature_ratio=4),
        StageConfig("convnext", 32, 64, 1, 32, 32)))
    model = DiMRModel(spec=ModelSpec(name="bench", factory=lambda o: None, paradigm=Paradigm.DIFFUSION,
                                     num_classes=10, null_class=10), networks={"dimr": DiMRNetwork(cfg).eval()},
                      config=cfg)
    model.to(device=dev)
    labels = torch.arange(args.dimr_batch) % 10

    def run() -> torch.Tensor:
        x = ImageRNG(list(range(args.dimr_batch))).randn((3, 32, 32))
        with torch.inference_mode():
            return dpm_solver_fast(model, x, labels, 25, policy=CFG.create(2.0)).x

    return run


if __name__ == "__main__":
    main()
