"""The exemplar of a category is its medoid (SPEC §1): the drawing with the
smallest mean distance to the other drawings of its category, in a fixed feature
space ("blur": Gaussian-blurred pixels, so that strokes a pixel apart still
overlap; "pixels": the raw pixels).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from latentsketch.config import ExemplarParams
from latentsketch.data.tables import EXEMPLAR_COLUMNS, Drawings
from latentsketch.io import images_to_column

# Bound on C·n·n distances held at once when medoids are computed in batches.
PAIRWISE_BUDGET = 1 << 25


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur N×H×W images with a Gaussian; outside the border is blank (zero).

    The separable filter is applied as two small matrix products, which is far
    faster on the CPU than a one-channel convolution.
    """
    if sigma <= 0:
        return images
    rows = blur_matrix(images.shape[-2], sigma, images.dtype, images.device)
    columns = blur_matrix(images.shape[-1], sigma, images.dtype, images.device)
    return rows @ images @ columns.T


def blur_matrix(size: int, sigma: float, dtype=torch.float32,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """size×size matrix M, (M x)[i] = sum_j g(i - j) x[j], g the truncated Gaussian."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    index = torch.arange(size)
    gap = index[:, None] - index[None, :]
    matrix = torch.where(gap.abs() <= radius, kernel[(gap + radius).clamp(0, 2 * radius)],
                         torch.zeros((), dtype=torch.float64))
    return matrix.to(device=device, dtype=dtype)


def exemplar_features(images: np.ndarray, params: ExemplarParams,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """N×48×48 uint8 drawings to N×2304 float64 feature vectors."""
    pixels = torch.from_numpy(np.asarray(images)).to(device=device, dtype=torch.float64)
    pixels = pixels / 255.0
    if params.feature == "blur":
        pixels = gaussian_blur(pixels, params.blur_sigma)
    return pixels.flatten(1)


def medoid_index(features: torch.Tensor) -> int:
    """Row of the medoid of one category's n×D features (first one on ties)."""
    return int(batched_medoids(features.unsqueeze(0))[0])


def batched_medoids(features: torch.Tensor) -> torch.Tensor:
    """Medoid row of each of C categories of equal size, from C×n×D features."""
    size = features.shape[1]
    if size == 1:
        return torch.zeros(features.shape[0], dtype=torch.long, device=features.device)
    distances = torch.cdist(features, features)
    mean_to_others = distances.sum(-1) / (size - 1)  # the self-distance is zero
    return mean_to_others.argmin(-1)


def category_medoids(drawings: Drawings, params: ExemplarParams,
                     device: torch.device | str = "cpu") -> dict[str, int]:
    """Table row of every category's medoid, categories batched by their size."""
    rows_of = drawings.table.groupby("category", sort=True).indices
    by_size: dict[int, list[str]] = {}
    for category, rows in rows_of.items():
        by_size.setdefault(len(rows), []).append(category)
    medoids = {}
    for size, categories in by_size.items():
        step = max(1, PAIRWISE_BUDGET // (size * size))
        for start in range(0, len(categories), step):
            chunk = categories[start:start + step]
            rows = np.stack([rows_of[c] for c in chunk])
            features = exemplar_features(drawings.images[rows.ravel()], params, device)
            picked = batched_medoids(features.view(len(chunk), size, -1)).cpu().numpy()
            medoids.update({c: int(r[p]) for c, r, p in zip(chunk, rows, picked)})
    return medoids


def select_exemplars(drawings: Drawings, params: ExemplarParams,
                     device: torch.device | str = "cpu") -> pd.DataFrame:
    """The exemplars table (tables.EXEMPLAR_COLUMNS), one row per category."""
    medoids = category_medoids(drawings, params, device)
    rows = np.array([medoids[c] for c in sorted(medoids)], dtype=np.int64)
    table = drawings.table.iloc[rows][["category", "split", "drawing_id"]]
    table = table.reset_index(drop=True)
    table["pixels"] = images_to_column(drawings.images[rows])
    return table[list(EXEMPLAR_COLUMNS)]


def exemplar_grid(images: np.ndarray, labels: list[str], title: str):
    """A labelled grid of drawings (ink dark on white), as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(1, min(15, math.ceil(math.sqrt(len(images) * 1.5))))
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.05),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, label in zip(axes.ravel(), images, labels):
        axis.imshow(image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        axis.set_title(label.replace("/", "\n"), fontsize=4.5, pad=1.5)
    figure.suptitle(title, fontsize=8)
    return figure
