"""The two critic networks of the originality-vs-recognizability framework.

- recognizability critic: a prototypical network trained episodically
  (`critics.prototypical`);
- originality critic: a SimCLR encoder (`critics.simclr`).

Both are trained on the training categories only and see every image through
`binarize` first, at training and at scoring time alike, so that generated
and human drawings reach them in the same form whatever their grey levels.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from latentsketch import paths

DEFAULT_THRESHOLD = 0.3
CRITICS = ("recognizability", "originality")


def binarize(images: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Min-max each image to [0, 1], then ink (1) where it exceeds `threshold`.

    `images` is N×1×H×W (or N×H×W), any float range. A blank image (max = min)
    stays blank rather than dividing by zero.
    """
    images = images.float()
    flat = images.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = (flat - low) / span.clamp_min(1e-8)
    return (scaled > threshold).float().view_as(images)


def weights_path(critic: str) -> Path:
    """models/critics/<critic>.safetensors, critic "recognizability" or "originality"."""
    return paths.CRITICS_DIR / f"{critic}.safetensors"


def data_digest(*tensors: torch.Tensor) -> str:
    """A short hash of training tensors: a checkpoint of other data is never resumed."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
