"""Originality and recognizability of a set of drawings (SPEC §4, paper §5.1).

Everything here is a plain function on tensors, so the meaning of a score can
be tested without files:

- recognizability: accuracy of the recognizability critic on one-shot tasks
  whose supports are the test exemplars and whose query is one drawing (a
  model's sample, or a human drawing) of one of the task's categories;
- originality: mean L2 distance, in the originality critic's features,
  between the drawings of a category and its exemplar, averaged over categories.

A critic is any callable from N×1×48×48 binary images to N×D features; every
image is binarized (`binarize`) before a critic sees it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from latentsketch.critics import DEFAULT_THRESHOLD, binarize

__all__ = ["binarize", "embed", "Tasks", "recognizability_tasks", "task_queries",
           "recognizability", "originality", "score_drawings", "normalize_originality",
           "distance_to_human"]

Critic = Callable[[torch.Tensor], torch.Tensor]
TASKS_SEED_OFFSET = 7919  # keeps the task list apart from other streams of the seed


@torch.no_grad()
def embed(critic: Critic, images: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
          batch_size: int = 512) -> torch.Tensor:
    """Binarize `images` (N×1×48×48, any range) and return the critic's features."""
    chunks = [critic(binarize(chunk, threshold)).float()
              for chunk in images.split(batch_size)]
    return torch.cat(chunks) if chunks else images.new_zeros(0, 0)


@dataclass(frozen=True)
class Tasks:
    """A list of one-shot tasks over categories 0..C−1.

    targets: (T,) the category of each task's query; ways: (T, W) the task's
    categories in a random order (the target among them); occurrence: (T,)
    how many earlier tasks share the target, which picks the query.
    """
    targets: torch.Tensor
    ways: torch.Tensor
    occurrence: torch.Tensor

    @property
    def tasks_per_category(self) -> int:
        return int(torch.bincount(self.targets).max())


def recognizability_tasks(n_categories: int, ways: int, tasks_per_category: int,
                          seed: int) -> Tasks:
    """Each category is the target of exactly `tasks_per_category` tasks.

    Its `ways − 1` distractors are drawn uniformly among the other categories,
    so within a task the target is no more likely than any other category to
    sit at a given place. The list depends only on its arguments: it is drawn
    on the CPU, so every model, device and run is scored on the same tasks.
    """
    if not 1 < ways <= n_categories:
        raise ValueError(f"{ways}-way tasks need between 2 and {n_categories} ways")
    generator = torch.Generator().manual_seed(seed + TASKS_SEED_OFFSET)
    targets = torch.arange(n_categories).repeat_interleave(tasks_per_category)
    keys = torch.rand(len(targets), n_categories, generator=generator)
    keys[torch.arange(len(targets)), targets] = math.inf  # the target is no distractor
    distractors = keys.argsort(dim=1)[:, :ways - 1]
    members = torch.cat([targets[:, None], distractors], dim=1)
    places = torch.rand(len(targets), ways, generator=generator).argsort(dim=1)
    occurrence = torch.arange(tasks_per_category).repeat(n_categories)
    return Tasks(targets, members.gather(1, places), occurrence)


def task_queries(query_labels: torch.Tensor, tasks: Tasks) -> torch.Tensor:
    """Index of each task's query among the drawings labelled with its target.

    A category's drawings are used evenly and in their stored order: with
    fewer drawings than tasks they are cycled through; with more, spread out.
    """
    labels = query_labels.cpu()
    n_categories = int(tasks.ways.max()) + 1
    counts = torch.bincount(labels, minlength=n_categories)
    empty = (counts[tasks.targets] == 0).nonzero()
    if len(empty):
        missing = sorted(set(tasks.targets[empty.flatten()].tolist()))
        raise ValueError(f"no query drawing for categories {missing}")
    order = torch.argsort(labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    n = counts[tasks.targets]
    per_category = tasks.tasks_per_category
    rank = torch.where(n >= per_category, tasks.occurrence * n // per_category,
                       tasks.occurrence % n)
    return order[starts[tasks.targets] + rank]


def recognizability(critic: Critic, supports: torch.Tensor, queries: torch.Tensor,
                    query_labels: torch.Tensor, tasks: Tasks,
                    threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Per-category accuracy (C,) of the critic on `tasks`.

    supports: C×1×48×48, one exemplar per category; queries: M×1×48×48 with
    their category in `query_labels` (M,). A task is solved when its query is
    closer to its target's exemplar than to the other exemplars of the task.
    """
    support_features = embed(critic, supports, threshold)
    query_features = embed(critic, queries, threshold)
    distances = torch.cdist(query_features, support_features).cpu()
    task_distances = distances[task_queries(query_labels, tasks)[:, None], tasks.ways]
    predicted = tasks.ways.gather(1, task_distances.argmin(dim=1, keepdim=True))
    correct = (predicted.squeeze(1) == tasks.targets).float()
    return _category_means(correct, tasks.targets, len(supports))


def originality(critic: Critic, exemplars: torch.Tensor, drawings: torch.Tensor,
                labels: torch.Tensor, threshold: float = DEFAULT_THRESHOLD
                ) -> torch.Tensor:
    """Per-category mean L2 distance (C,) between drawings and their exemplar.

    exemplars: C×1×48×48; drawings: M×1×48×48 with their category in `labels`.
    A category without drawings gets NaN.
    """
    exemplar_features = embed(critic, exemplars, threshold)
    drawing_features = embed(critic, drawings, threshold)
    labels = labels.to(drawing_features.device)
    distances = (drawing_features - exemplar_features[labels]).norm(dim=1)
    return _category_means(distances.cpu(), labels.cpu(), len(exemplars))


def _category_means(values: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    sums = torch.zeros(n, dtype=torch.float64).index_add_(0, labels, values.double())
    counts = torch.bincount(labels, minlength=n).double()
    return sums / counts  # 0/0 = NaN marks a category without values


def score_drawings(*, recognizer: Critic, originality_features: Critic,
                   exemplars: torch.Tensor, categories: list[str], drawings: torch.Tensor,
                   labels: torch.Tensor, ways: int, tasks_per_category: int, seed: int,
                   threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per category: recognizability, originality, n_samples."""
    tasks = recognizability_tasks(len(categories), ways, tasks_per_category, seed)
    accuracy = recognizability(recognizer, exemplars, drawings, labels, tasks, threshold)
    distance = originality(originality_features, exemplars, drawings, labels, threshold)
    counts = torch.bincount(labels.cpu(), minlength=len(categories))
    return pd.DataFrame({"category": categories,
                         "recognizability": accuracy.numpy(),
                         "originality": distance.numpy(),
                         "n_samples": counts.numpy().astype(np.int64)})


def normalize_originality(values: Mapping[str, float]) -> dict[str, float]:
    """Min-max originality over every scored entry (models, pixel, human) to [0, 1].

    With all values equal there is no spread to normalize by: every entry gets 0.
    """
    low, high = min(values.values()), max(values.values())
    span = high - low
    return {key: (value - low) / span if span > 0 else 0.0
            for key, value in values.items()}


def distance_to_human(points, human):
    """Euclidean distance to the human point in the (originality, recognizability) plane.

    `points` is a mapping name → (normalized originality, recognizability), giving
    a dict of distances, or an array-like of such pairs (K×2), giving an array.
    """
    human = np.asarray(human, dtype=np.float64)
    if isinstance(points, Mapping):
        return {key: float(np.linalg.norm(np.asarray(point, np.float64) - human))
                for key, point in points.items()}
    return np.linalg.norm(np.asarray(points, dtype=np.float64) - human, axis=-1)
