"""barlow: the cross-correlation of two views' features pushed to identity (Eq. 15)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def standardize(features: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit (biased) variance per feature over the batch; no affine part."""
    mean = features.mean(dim=0)
    variance = features.var(dim=0, unbiased=False)
    return (features - mean) / torch.sqrt(variance + eps)


def barlow_twins_loss(view_a: Tensor, view_b: Tensor, lambd: float = 5e-3) -> Tensor:
    """Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², with C = z_Aᵀ z_B / B (Eq. 15)."""
    batch = len(view_a)
    # Empirical cross-correlation matrix of the standardized features.
    correlation = standardize(view_a).T @ standardize(view_b) / batch
    on_diagonal = (1 - torch.diagonal(correlation)).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - torch.diagonal(correlation).pow(2).sum()
    return on_diagonal + lambd * off_diagonal


class BarlowRegularizer(nn.Module):
    needs_views = True

    def __init__(self, latent_dim: int, probe_dim: int = 128, lambd: float = 5e-3):
        super().__init__()
        self.probe = nn.Linear(latent_dim, probe_dim)
        self.lambd = lambd

    @classmethod
    def from_config(cls, config) -> "BarlowRegularizer":
        return cls(config.latent_dim, config.contrastive_probe_dim, config.barlow_lambda)

    def forward(self, batch) -> Tensor:
        view_a, view_b = batch.views
        return barlow_twins_loss(self.probe(view_a).float(), self.probe(view_b).float(),
                                 self.lambd)
