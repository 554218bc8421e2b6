"""Reverse chains: ancestral DDPM over all T steps, and deterministic DDIM.

Both samplers take the condition batch `cond` (one exemplar per row, already
repeated for several variations) and return samples of the same shape. A
`hook(step, t, z_t, epsilon)` is called at every step with the step count
(0 at the noisiest step), the timestep index t of z_t (0-indexed, see
schedule.py), z_t itself and the guided ε̃ at (z_t, t), so that per-step
quantities such as the Eq. 9 feature maps can be accumulated along the chain.
The hook runs outside `torch.no_grad`, on detached tensors.
"""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from latentsketch.diffusion.guidance import guided_epsilon
from latentsketch.diffusion.schedule import NoiseSchedule
from latentsketch.errors import InputError

StepHook = Callable[[int, int, torch.Tensor, torch.Tensor], None]
Sampler = Literal["ddpm", "ddim"]


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """`steps` timestep indices evenly spread from T−1 down to 0."""
    if not 1 <= steps <= timesteps:
        raise InputError(f"params sample.ddim_steps: {steps} must be between 1 and the "
                         f"{timesteps} timesteps of the model.")
    grid = torch.linspace(timesteps - 1, 0, steps).round().long()
    return grid.tolist()


def ddpm_sample(denoiser: nn.Module, schedule: NoiseSchedule, cond: torch.Tensor, *,
                guidance_scale: float = 1.0, generator: torch.Generator | None = None,
                z_T: torch.Tensor | None = None, hook: StepHook | None = None,
                clip_z0: float | None = None,
                autocast: Callable[[], ContextManager] = contextlib.nullcontext,
                progress: bool = False) -> torch.Tensor:
    """Ancestral sampling z_T -> z_0 through every timestep (Ho et al. 2020)."""
    z = _start(cond, z_T, generator)
    chain = range(schedule.timesteps - 1, -1, -1)
    for step, t in enumerate(_progress(chain, "ddpm", progress)):
        epsilon = _epsilon(denoiser, z, t, cond, guidance_scale, autocast)
        if hook is not None:
            hook(step, t, z, epsilon)
        z0 = _clip(schedule.predict_z0(z, t, epsilon), clip_z0)
        # z_{t−1} ~ N(μ̃_t(z_t, ẑ_0), β̃_t I): Eq. 33's mean, written through ẑ_0
        mean = schedule.posterior_mean(z0, z, t)
        if t == 0:
            return mean
        z = mean + schedule.posterior_variance(t).sqrt() * _noise_like(z, generator)
    return z


def ddim_sample(denoiser: nn.Module, schedule: NoiseSchedule, cond: torch.Tensor, *,
                steps: int = 50, eta: float = 0.0, guidance_scale: float = 1.0,
                generator: torch.Generator | None = None, z_T: torch.Tensor | None = None,
                hook: StepHook | None = None, clip_z0: float | None = None,
                autocast: Callable[[], ContextManager] = contextlib.nullcontext,
                progress: bool = False) -> torch.Tensor:
    """DDIM (Song et al. 2021) over `steps` of the T timesteps.

    η = 0 is deterministic; η = 1 is ancestral sampling on the shortened chain
    (with `steps` = T it is the DDPM chain again, up to rounding).
    """
    z = _start(cond, z_T, generator)
    times = ddim_timesteps(schedule.timesteps, steps)
    for step, t in enumerate(_progress(times, "ddim", progress)):
        epsilon = _epsilon(denoiser, z, t, cond, guidance_scale, autocast)
        if hook is not None:
            hook(step, t, z, epsilon)
        alpha_bar = schedule.alpha_bars[t]
        z0 = schedule.predict_z0(z, t, epsilon)
        if clip_z0 is not None:
            z0 = _clip(z0, clip_z0)
            epsilon = (z - alpha_bar.sqrt() * z0) / (1.0 - alpha_bar).sqrt()
        next_t = times[step + 1] if step + 1 < len(times) else None
        alpha_bar_next = schedule.alpha_bars[next_t] if next_t is not None else 1.0
        alpha_bar_next = torch.as_tensor(alpha_bar_next, device=z.device)
        # σ² = η² β̃ of the jump t -> t' (Song et al., Eq. 16)
        variance = eta ** 2 * (1 - alpha_bar_next) / (1 - alpha_bar) * (
            1 - alpha_bar / alpha_bar_next)
        # z_{t'} = √ᾱ_{t'} ẑ_0 + √(1 − ᾱ_{t'} − σ²) ε̃ + σ noise (Song et al., Eq. 12)
        # clamp: rounding can push the radicand a hair below zero
        direction = (1.0 - alpha_bar_next - variance).clamp(min=0).sqrt()
        z = alpha_bar_next.sqrt() * z0 + direction * epsilon
        if eta > 0 and next_t is not None:
            z = z + variance.sqrt() * _noise_like(z, generator)
    return z


def sample(denoiser: nn.Module, schedule: NoiseSchedule, cond: torch.Tensor, *,
           sampler: Sampler, ddim_steps: int = 50, ddim_eta: float = 0.0,
           guidance_scale: float = 1.0, generator: torch.Generator | None = None,
           batch_size: int = 4096, clip_z0: float | None = None,
           autocast: Callable[[], ContextManager] = contextlib.nullcontext,
           progress: bool = False) -> torch.Tensor:
    """One sample per row of `cond`, `batch_size` rows per chain (×2 with guidance)."""
    if sampler not in ("ddpm", "ddim"):
        raise InputError(f"params sample.sampler: unknown {sampler!r}; use ddpm or ddim.")
    if batch_size < 1:
        raise InputError(f"params sample.batch_size: {batch_size} must be at least 1.")
    z_T = _start(cond, None, generator)
    options = dict(guidance_scale=guidance_scale, generator=generator, clip_z0=clip_z0,
                   autocast=autocast, progress=progress)
    if sampler == "ddim":
        options.update(steps=ddim_steps, eta=ddim_eta)
    chain = ddim_sample if sampler == "ddim" else ddpm_sample
    return torch.cat([chain(denoiser, schedule, cond_batch, z_T=z_batch, **options)
                      for cond_batch, z_batch in zip(cond.split(batch_size),
                                                     z_T.split(batch_size))])


def _start(cond: torch.Tensor, z_T: torch.Tensor | None,
           generator: torch.Generator | None) -> torch.Tensor:
    if z_T is not None:
        return z_T.to(device=cond.device, dtype=torch.float32)
    return torch.randn(cond.shape, generator=generator, device=cond.device)


def _noise_like(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


def _progress(steps, desc: str, shown: bool):
    """A progress bar over the chain's steps, drawn on terminals only."""
    return tqdm(steps, desc=desc, disable=None if shown else True, leave=False)


def _epsilon(denoiser, z, t, cond, guidance_scale, autocast) -> torch.Tensor:
    with torch.no_grad(), autocast():
        return guided_epsilon(denoiser, z, t, cond, guidance_scale)


def _clip(z0: torch.Tensor, bound: float | None) -> torch.Tensor:
    return z0 if bound is None else z0.clamp(-bound, bound)
