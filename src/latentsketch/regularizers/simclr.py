"""simclr: two augmented views of each drawing told apart from the others (Eq. 14)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def nt_xent(view_a: Tensor, view_b: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent: mean over the 2B views of −log softmax of the positive's cosine / τ.

    Each view's candidates are the 2B − 1 other views; its positive is the other
    view of the same drawing.
    """
    features = F.normalize(torch.cat([view_a, view_b]), dim=1)
    similarity = features @ features.T / temperature
    n_views = len(features)
    # A view is not its own candidate.
    similarity = similarity.masked_fill(
        torch.eye(n_views, dtype=torch.bool, device=features.device), float("-inf"))
    batch = len(view_a)
    positives = torch.arange(n_views, device=features.device).roll(batch)
    return F.cross_entropy(similarity, positives)


class SimCLRRegularizer(nn.Module):
    needs_views = True

    def __init__(self, latent_dim: int, probe_dim: int = 128, temperature: float = 0.5):
        super().__init__()
        self.probe = nn.Linear(latent_dim, probe_dim)
        self.temperature = temperature

    @classmethod
    def from_config(cls, config) -> "SimCLRRegularizer":
        return cls(config.latent_dim, config.contrastive_probe_dim, config.simclr_temperature)

    def forward(self, batch) -> Tensor:
        view_a, view_b = batch.views
        # Eq. 14
        return nt_xent(self.probe(view_a).float(), self.probe(view_b).float(),
                       self.temperature)
