"""The denoising objective with classifier-free condition dropout."""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch
from torch import nn
from torch.nn import functional as F

from latentsketch.diffusion.schedule import NoiseSchedule


def diffusion_loss(denoiser: nn.Module, schedule: NoiseSchedule, z0: torch.Tensor,
                   exemplar: torch.Tensor, *, cond_drop_prob: float,
                   generator: torch.Generator | None = None,
                   autocast: Callable[[], ContextManager] = contextlib.nullcontext
                   ) -> torch.Tensor:
    """‖ε_ψ(ν_t(z_0), z_y, t) − ε‖², t ~ U over all timesteps (Eq. 6).

    The squared error is averaged over elements and batch rather than summed
    over dimensions: only the scale differs, which AdamW normalizes away. Each
    row's exemplar is replaced by the null condition with probability
    `cond_drop_prob`, which teaches the same network the unconditional ε of
    Eq. 8.
    """
    batch, device = z0.shape[0], z0.device
    t = torch.randint(0, schedule.timesteps, (batch,), generator=generator, device=device)
    noise = torch.randn(z0.shape, generator=generator, device=device)
    drop = torch.rand(batch, generator=generator, device=device) < cond_drop_prob
    z_t = schedule.q_sample(z0, t, noise)
    with autocast():
        predicted = denoiser(z_t, t, exemplar, drop)
    return F.mse_loss(predicted.float(), noise)
