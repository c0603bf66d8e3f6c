"""How faithful is a latent autoencoder on the shapes dataset: reconstruction error, colour (mean saturation,
hue-histogram TV distance to the originals) and class (shapes-cnn accuracy and FD of the reconstructions against
the test split), next to the same figures for the originals themselves.

    python benchmarks/autoencoder_quality.py [--weights asset:shapes_ae.safetensors] [--n 2000]
    python benchmarks/autoencoder_quality.py --var-vae asset:var_shapes_vae.safetensors   (the VQVAE of var-shapes)
    smoke mode (CI): --n 20 --num-reference 100
"""

from __future__ import annotations

import argparse

import torch

from genloom.data import load_split
from genloom.engine import weights
from genloom.eval import colour_report, evaluate


def reconstruct(args: argparse.Namespace, images: torch.Tensor) -> torch.Tensor:
    if args.var_vae:
        import genloom

        vae = genloom.load("var-shapes", vae=args.var_vae).model.vae
        with torch.inference_mode():
            return vae.indices_to_img(vae.img_to_indices(images))[0]
    from genloom.engine.autoencoder import load_autoencoder_file

    ae, _ = load_autoencoder_file(weights.resolve(args.weights).path)
    with torch.inference_mode():
        return torch.cat([ae.decode(ae.encode(images[i:i + 250]).latent_dist.mean).sample.clamp(-1, 1)
                          for i in range(0, len(images), 250)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default="asset:shapes_ae.safetensors")
    parser.add_argument("--var-vae", default=None, help="measure var-shapes' VQVAE (this file) instead")
    parser.add_argument("--n", type=int, default=2000, help="test images (held out: start 10 000)")
    parser.add_argument("--num-reference", type=int, default=5000)
    args = parser.parse_args()
    images, labels = load_split("test", args.n, start=10_000)
    recon = reconstruct(args, images)
    mse = float((recon - images).square().mean())
    print(f"{'set':<16} {'MSE':>8} {'MAE/255':>8} {'accuracy':>8} {'FD':>8} {'saturation':>10} {'hue TV':>7}")
    for name, x in (("originals", images), ("reconstructions", recon)):
        r = evaluate(x, labels.numpy(), num_reference=args.num_reference, subsets=1)
        c = colour_report(x, images)
        err = float((x - images).square().mean()), float((x - images).abs().mean() * 127.5)
        print(f"{name:<16} {err[0]:>8.5f} {err[1]:>8.2f} {r.accuracy:>8.4f} {r.fd:>8.4f} "
              f"{c.mean_saturation:>10.1f} {c.hue_tv:>7.3f}")
    print(f"reconstruction MSE {mse:.5f} on {args.n} test images")


if __name__ == "__main__":
    main()
