"""kl: a Gaussian posterior pulled towards N(0, I) (Eq. 2)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def reparametrize(mean: Tensor, logvar: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """z = μ + σ·ε, ε ~ N(0, I): a posterior sample that gradients flow through."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                        dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, mean over the batch."""
    # Eq. 2, in closed form for diagonal Gaussians.
    per_dim = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    return per_dim.sum(dim=1).mean()


class KLRegularizer(nn.Module):
    """No parameters: the log-variance head belongs to the encoder."""

    @classmethod
    def from_config(cls, config) -> "KLRegularizer":
        return cls()

    def forward(self, batch) -> Tensor:
        encoding = batch.encoding
        return kl_to_standard_normal(encoding.mean.float(), encoding.logvar.float())
