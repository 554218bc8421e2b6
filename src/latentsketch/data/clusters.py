"""Visually consistent groups inside one Quick, Draw! category (SPEC §1, step 2).

Features are fixed, not learned: blurred drawings pooled to 16×16 and scaled to
unit length, so that k-means groups drawings by their overall layout (a round
clock apart from a square one) rather than by exact stroke positions. Work runs
on the CPU, in float64 and on one thread, so that one seed gives the same
categories on any machine (and the matrices are too small to gain from threads).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from latentsketch.data.exemplars import blur_matrix

POOL = 3  # 48×48 -> 16×16
MAX_ITERATIONS = 100


@dataclass(frozen=True)
class Cluster:
    rank: int  # 0 = the largest cluster of its category
    size: int  # members before keeping the most central ones
    members: np.ndarray  # kept drawings' indices, most central first
    cohesion: float  # mean cosine similarity of the kept drawings to their mean


def cluster_features(images: np.ndarray, sigma: float) -> torch.Tensor:
    """N×48×48 uint8 drawings to N×256 unit-length float64 vectors.

    Blur then 3×3 average pooling, folded into one 16×48 matrix per side.
    """
    pixels = torch.from_numpy(np.asarray(images)).to(torch.float64) / 255.0
    side = pixels.shape[-1]
    pool = torch.kron(torch.eye(side // POOL, dtype=torch.float64),
                      torch.full((1, POOL), 1 / POOL, dtype=torch.float64))
    reduce = pool @ blur_matrix(side, sigma, torch.float64) if sigma > 0 else pool
    return F.normalize((reduce @ pixels @ reduce.T).flatten(1), dim=1)


def kmeans(features: torch.Tensor, k: int,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from a k-means++ start; returns (labels, centroids)."""
    k = min(k, len(features))
    centroids = _kmeans_plus_plus(features, k, generator)
    labels = None
    for _ in range(MAX_ITERATIONS):
        new_labels = torch.cdist(features, centroids).argmin(1)
        if labels is not None and torch.equal(new_labels, labels):
            break
        labels = new_labels
        centroids = _cluster_means(features, labels, centroids)
    return labels, centroids


def _kmeans_plus_plus(features: torch.Tensor, k: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Seeds drawn with probability proportional to squared distance (Arthur 2007)."""
    first = torch.randint(len(features), (1,), generator=generator)
    chosen = [int(first)]
    nearest = torch.cdist(features, features[chosen]).squeeze(1) ** 2
    for _ in range(1, k):
        if nearest.sum() <= 0:  # every drawing already coincides with a seed
            pick = int(torch.randint(len(features), (1,), generator=generator))
        else:
            pick = int(torch.multinomial(nearest, 1, generator=generator))
        chosen.append(pick)
        distance = torch.cdist(features, features[pick:pick + 1]).squeeze(1) ** 2
        nearest = torch.minimum(nearest, distance)
    return features[chosen].clone()


def _cluster_means(features: torch.Tensor, labels: torch.Tensor,
                   previous: torch.Tensor) -> torch.Tensor:
    """Mean of each cluster's members; an emptied cluster keeps its centroid."""
    sums = torch.zeros_like(previous).index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=len(previous)).unsqueeze(1)
    return torch.where(counts > 0, sums / counts.clamp(min=1), previous)


def cluster_category(images: np.ndarray, *, clusters: int, n_per_class: int,
                     min_cohesion: float, sigma: float,
                     generator: torch.Generator) -> list[Cluster]:
    """Clusters of one category that have >= n_per_class members and enough cohesion."""
    with one_thread():
        features = cluster_features(images, sigma)
        labels, centroids = kmeans(features, clusters, generator)
    sizes = torch.bincount(labels, minlength=len(centroids))
    ranked = sorted(range(len(centroids)), key=lambda c: (-int(sizes[c]), c))
    kept = []
    for rank, label in enumerate(ranked):
        if sizes[label] < n_per_class:
            continue
        members = torch.nonzero(labels == label).squeeze(1)
        distance = (features[members] - centroids[label]).norm(dim=1)
        order = torch.sort(distance, stable=True).indices[:n_per_class]
        central = members[order]
        cluster = Cluster(rank, int(sizes[label]), central.numpy(),
                          cohesion(features[central]))
        if cluster.cohesion >= min_cohesion:
            kept.append(cluster)
    return kept


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cohesion(features: torch.Tensor) -> float:
    """Mean cosine similarity of unit-length features to the direction of their mean."""
    direction = F.normalize(features.mean(0), dim=0)
    return float((features @ direction).mean())
