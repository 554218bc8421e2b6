"""Classifier-free guidance: the conditional and unconditional noise estimates."""
from __future__ import annotations

import torch
from torch import nn


def guided_epsilon(denoiser: nn.Module, z_t: torch.Tensor, t: torch.Tensor | int,
                   cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """ε̃ = (1 + γ) ε(z_t, z_y) − γ ε(z_t, ∅), γ = `guidance_scale` (Eq. 8 in ε form).

    Both terms come from ONE forward pass over the batch stacked twice, the
    second copy with its condition dropped to the learned null. γ = 0 needs
    no unconditional term, so it costs a single plain pass. The result is
    float32 whatever precision the forward pass ran in.
    """
    t = torch.as_tensor(t, device=z_t.device)
    t = t.expand(z_t.shape[0]) if t.dim() == 0 else t
    if guidance_scale == 0:
        return denoiser(z_t, t, cond).float()
    batch = z_t.shape[0]
    drop = torch.arange(2 * batch, device=z_t.device) >= batch
    epsilon = denoiser(torch.cat([z_t, z_t]), torch.cat([t, t]),
                       torch.cat([cond, cond]), drop).float()
    conditional, unconditional = epsilon[:batch], epsilon[batch:]
    return (1.0 + guidance_scale) * conditional - guidance_scale * unconditional
