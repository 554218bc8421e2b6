"""Eq. 9 maps with a Jacobian-vector product vs with the decoder Jacobian built in full.

One model, 25 categories × 10 variations in one batch of chains, the paper's
Table 1 decoder at d = 64 and a small MLP denoiser (random weights: the cost
does not depend on training). Both ways run the same DDIM chain from the same
noise and must give the same maps; the script prints both times and their
ratio, and exits with status 1 when the JVP is not at least --min-ratio times
faster.

    python benchmarks/bench_maps.py [--steps 2] [--jacobian jacfwd|jacrev]

The full Jacobian is the fastest way to build it here (jacfwd: d = 64 tangents
per image, against 2304 rows for jacrev), built in chunks of images to bound
memory.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from latentsketch import maps
from latentsketch.diffusion import LatentDiffusion, NoiseSchedule
from latentsketch.models.denoiser import MLPUNet
from latentsketch.models.rae import Decoder

LATENT_DIM, CATEGORIES, VARIATIONS = 64, 25, 10


def jacobian_contribution(build: str, chunk: int):
    """|J · direction| with J (N×2304×d) materialized, `chunk` images at a time."""
    def contribution(decode, latent, direction):
        def one_image(z):
            return decode(z[None])[0].reshape(-1)  # 2304 pixels

        jacobian_of = torch.func.vmap(getattr(torch.func, build)(one_image))
        parts = []
        for z, v in zip(latent.split(chunk), direction.split(chunk)):
            jacobian = jacobian_of(z)  # chunk × 2304 × d
            parts.append(torch.einsum("npd,nd->np", jacobian, v).abs())
        return torch.cat(parts).reshape(len(latent), 48, 48)
    return contribution


def timed_maps(ldm, decode, exemplars, steps: int, contribution) -> tuple[torch.Tensor, float]:
    began = time.perf_counter()
    result = maps.feature_maps(ldm, decode, exemplars, variations=VARIATIONS, sampler="ddim",
                               steps=steps, generator=torch.Generator().manual_seed(0),
                               contribution=contribution)
    return result, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="DDIM steps of the chain")
    parser.add_argument("--jacobian", choices=["jacfwd", "jacrev"], default="jacfwd")
    parser.add_argument("--chunk", type=int, default=10, help="images per Jacobian batch")
    parser.add_argument("--min-ratio", type=float, default=20.0)
    args = parser.parse_args()

    torch.manual_seed(0)
    decode = maps.frozen_decoder(Decoder(LATENT_DIM))
    ldm = LatentDiffusion(MLPUNet(LATENT_DIM, [128, 64], time_dim=32).eval(),
                          NoiseSchedule.build(timesteps=1000), mean=0.1, std=1.3)
    exemplars = torch.randn(CATEGORIES, LATENT_DIM)
    timed_maps(ldm, decode, exemplars[:1], 1, maps.jvp_contribution)  # one-time setup

    by_jvp, jvp_seconds = timed_maps(ldm, decode, exemplars, args.steps,
                                     maps.jvp_contribution)
    by_jacobian, jacobian_seconds = timed_maps(
        ldm, decode, exemplars, args.steps, jacobian_contribution(args.jacobian, args.chunk))

    difference = ((by_jvp - by_jacobian).abs().max() / by_jacobian.abs().max()).item()
    ratio = jacobian_seconds / jvp_seconds
    print(f"maps of {CATEGORIES} categories × {VARIATIONS} variations, {args.steps} DDIM "
          f"steps, d = {LATENT_DIM}, {torch.get_num_threads()} threads")
    print(f"jvp: {jvp_seconds:.2f}s  {args.jacobian} Jacobian: {jacobian_seconds:.2f}s  "
          f"speed ratio {ratio:.1f}×  max relative difference {difference:.1e}")
    identical = torch.allclose(by_jvp, by_jacobian, rtol=1e-4, atol=1e-6)
    print("maps identical (rtol 1e-4)" if identical else "MAPS DIFFER")
    return 0 if identical and ratio >= args.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
