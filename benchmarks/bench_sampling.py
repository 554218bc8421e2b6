"""How much faster is DDIM than the paper's DDPM, and how many samples per second?

    python benchmarks/bench_sampling.py [--params params.yaml] [--exemplars 15]
                                        [--per-exemplar 20] [--pixel]

Times the guided reverse chain of a denoiser built at the params' ldm widths
(random weights: the cost of a chain does not depend on what was learned)
for the same exemplars and starting noise: ancestral DDPM over all T steps
and DDIM over sample.ddim_steps (η = sample.ddim_eta). Prints wall times,
their ratio and each sampler's throughput. --pixel also times the pixel
U-Net's DDIM chain at the pixel params, in batches of image_batch_size.
"""
from __future__ import annotations

import argparse
import time

import torch

from latentsketch.config import load_params
from latentsketch.diffusion import NoiseSchedule, ddim_sample, ddpm_sample, sample
from latentsketch.models.denoiser import MLPUNet
from latentsketch.models.pixel_unet import PixelUNet
from latentsketch.runtime import resolve_device, set_threads


def timed(chain, *args, **kwargs) -> float:
    began = time.perf_counter()
    chain(*args, **kwargs)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--exemplars", type=int, default=15)
    parser.add_argument("--per-exemplar", type=int, default=20)
    parser.add_argument("--pixel", action="store_true")
    args = parser.parse_args()
    params = load_params(args.params)
    threads = set_threads(params.threads)
    device = resolve_device(params.device)
    torch.manual_seed(params.seed)
    p, s = params.ldm, params.sample
    schedule = NoiseSchedule.build(p.schedule, p.timesteps, p.beta_start, p.beta_end,
                                   device)
    n = args.exemplars * args.per_exemplar
    print(f"device {device}, {threads} threads, {n} samples "
          f"({args.exemplars} exemplars × {args.per_exemplar}), guidance γ={s.guidance_scale}")

    denoiser = MLPUNet(params.rae.latent_dim, p.widths, p.time_dim, p.attention)
    denoiser = denoiser.to(device).eval()
    cond = torch.randn(n, params.rae.latent_dim, device=device)
    z_T = torch.randn_like(cond)
    options = dict(guidance_scale=s.guidance_scale, z_T=z_T,
                   generator=torch.Generator(device).manual_seed(0))
    ddim_sample(denoiser, schedule, cond, steps=2, **options)  # warm-up
    ddim = timed(ddim_sample, denoiser, schedule, cond, steps=s.ddim_steps, eta=s.ddim_eta,
                 **options)
    ddpm = timed(ddpm_sample, denoiser, schedule, cond, **options)
    print(f"latent MLP U-Net widths {p.widths}: DDPM-{p.timesteps} {ddpm:.2f}s "
          f"({n / ddpm:.1f} samples/s), DDIM-{s.ddim_steps} {ddim:.2f}s "
          f"({n / ddim:.1f} samples/s), ratio DDPM/DDIM {ddpm / ddim:.1f}×")

    if args.pixel:
        pixel = PixelUNet(params.pixel.channels, params.pixel.time_dim).to(device).eval()
        images = torch.rand(n, 1, 48, 48, device=device)
        seconds = timed(sample, pixel, schedule, images, sampler="ddim",
                        ddim_steps=s.pixel_ddim_steps, ddim_eta=s.ddim_eta,
                        guidance_scale=s.guidance_scale, clip_z0=1.0,
                        batch_size=s.image_batch_size,
                        generator=torch.Generator(device).manual_seed(0))
        print(f"pixel U-Net channels {params.pixel.channels}: DDIM-{s.pixel_ddim_steps} "
              f"in batches of {s.image_batch_size}: {seconds:.2f}s "
              f"({n / seconds:.2f} samples/s)")


if __name__ == "__main__":
    main()
