"""proto: variations pulled towards their own exemplar in a projected space (Eq. 5/13).

Variations and exemplars are both encoded (with gradients) and projected by
h = Linear–BN–ReLU–Linear; a variation's logits are the negative squared
distances to the distinct exemplars of the batch, its target its own
category's exemplar. Categories repeated in a batch give one exemplar, so a
variation's own category is never also one of its negatives.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def prototype_loss(variations: Tensor, exemplars: Tensor, labels: Tensor,
                   exemplar_labels: Tensor) -> Tensor:
    """Mean cross-entropy of −‖h(z) − h(z_y)‖² over the batch (Eq. 13).

    variations: B×k projected variations, labels: their categories (B,);
    exemplars: C×k projected exemplars of C distinct categories exemplar_labels.
    """
    logits = -torch.cdist(variations, exemplars).pow(2)
    target = (labels[:, None] == exemplar_labels[None, :]).float().argmax(dim=1)
    return F.cross_entropy(logits, target)


class ProtoRegularizer(nn.Module):
    needs_exemplars = True

    def __init__(self, latent_dim: int, width: int = 128):
        super().__init__()
        self.projector = nn.Sequential(nn.Linear(latent_dim, width), nn.BatchNorm1d(width),
                                       nn.ReLU(), nn.Linear(width, width))

    @classmethod
    def from_config(cls, config) -> "ProtoRegularizer":
        return cls(config.latent_dim, config.proto_projector_width)

    def forward(self, batch) -> Tensor:
        variations = batch.encoding.latent
        # One projector pass, so both sides are normalized by the same batch statistics.
        projected = self.projector(torch.cat([variations, batch.exemplar_latents])).float()
        return prototype_loss(projected[:len(variations)], projected[len(variations):],
                              batch.labels, batch.exemplar_labels)
