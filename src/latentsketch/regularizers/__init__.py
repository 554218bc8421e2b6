"""The RAE's regularizers (SPEC §2), each a small module named after it.

A model's regularization is a weighted mix Σ_r β_r · L_r with the βs of its
grid name ("proto-5+barlow-50" → {"proto": 5, "barlow": 50}); the
unregularized model ("none") has no term at all. Every regularizer takes the
same `RegularizerInput` and returns its loss as a scalar, reduced as the
reference code did, so that the paper's β ranges keep their meaning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from latentsketch.regularizers.barlow import BarlowRegularizer
from latentsketch.regularizers.classif import ClassifRegularizer
from latentsketch.regularizers.kl import KLRegularizer
from latentsketch.regularizers.proto import ProtoRegularizer
from latentsketch.regularizers.simclr import SimCLRRegularizer
from latentsketch.regularizers.vq import VQRegularizer

if TYPE_CHECKING:
    from latentsketch.models.rae import Encoding

REGISTRY: dict[str, type[nn.Module]] = {
    "kl": KLRegularizer, "vq": VQRegularizer, "classif": ClassifRegularizer,
    "proto": ProtoRegularizer, "simclr": SimCLRRegularizer, "barlow": BarlowRegularizer,
}


@dataclass
class RegularizerInput:
    """What one training batch offers the regularizers."""
    encoding: "Encoding"  # the clean variations
    labels: Tensor  # index of each variation's training category
    # Latents of two augmented views of the batch (simclr, barlow).
    views: tuple[Tensor, Tensor] | None = None
    # Latents of the distinct exemplars of the batch's categories (proto).
    exemplar_latents: Tensor | None = None
    exemplar_labels: Tensor | None = None


def build_regularizers(config: Any) -> nn.ModuleDict:
    """One module per regularizer with a β in `config.betas` (an RaeConfig)."""
    return nn.ModuleDict({name: REGISTRY[name].from_config(config)
                          for name in config.betas})


def needs_views(regularizers: nn.ModuleDict) -> bool:
    return any(getattr(r, "needs_views", False) for r in regularizers.values())


def needs_exemplars(regularizers: nn.ModuleDict) -> bool:
    return any(getattr(r, "needs_exemplars", False) for r in regularizers.values())


def regularization(regularizers: nn.ModuleDict, betas: dict[str, float],
                   batch: RegularizerInput) -> tuple[Tensor, dict[str, Tensor]]:
    """Σ_r β_r · L_r (Eq. 1's second term) and each unweighted L_r."""
    terms = {name: module(batch).float() for name, module in regularizers.items()}
    total = sum((betas[name] * term for name, term in terms.items()),
                start=torch.zeros((), device=batch.labels.device))
    return total, terms
