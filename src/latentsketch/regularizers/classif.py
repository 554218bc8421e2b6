"""classif: a linear head from the latent to the training categories (Eq. 4)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from latentsketch.errors import InputError


class ClassifRegularizer(nn.Module):
    def __init__(self, latent_dim: int, n_classes: int):
        super().__init__()
        if n_classes < 2:
            raise InputError(f"classif regularizer: {n_classes} training categories; "
                             "it needs at least two (check the prepared data's split).")
        self.head = nn.Linear(latent_dim, n_classes)

    @classmethod
    def from_config(cls, config) -> "ClassifRegularizer":
        return cls(config.latent_dim, config.n_classes)

    def forward(self, batch) -> Tensor:
        # Eq. 4: mean cross-entropy over the batch.
        logits = self.head(batch.encoding.latent)
        return F.cross_entropy(logits.float(), batch.labels)
