"""What the originality and recognizability scores mean (SPEC §4).

Most tests use a fixed feature map (the binarized pixels themselves) or a tiny
untrained critic: the properties pinned here belong to the scoring maths, not
to a trained network.
"""
import math

import numpy as np
import pytest
import torch

from latentsketch.critics.networks import Critic
from latentsketch.scores import (binarize, distance_to_human, normalize_originality,
                                 originality, recognizability, recognizability_tasks,
                                 score_drawings, task_queries)


pytestmark = pytest.mark.usefixtures("one_thread")


def pixels(images: torch.Tensor) -> torch.Tensor:
    """The identity critic: a drawing's features are its binarized pixels."""
    return images.flatten(1)


def stroke_drawings(n: int, seed: int = 0) -> torch.Tensor:
    """n random binary drawings of a few thick strokes each, N×1×48×48."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, 48, 48)
    for image in images:
        for _ in range(4):
            row, col = torch.randint(4, 40, (2,), generator=generator).tolist()
            if torch.rand(1, generator=generator) < 0.5:
                image[0, row:row + 3, col:col + 8] = 1.0
            else:
                image[0, row:row + 8, col:col + 3] = 1.0
    return images


def flip_pixels(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Copies of `images` with exactly `count` background pixels turned to ink."""
    generator = torch.Generator().manual_seed(seed)
    flipped = images.clone().flatten(1)
    for image in flipped:
        background = (image == 0).nonzero().flatten()
        chosen = background[torch.randperm(len(background), generator=generator)[:count]]
        image[chosen] = 1.0
    return flipped.view_as(images)


def tiny_critic() -> Critic:
    torch.manual_seed(0)
    return Critic("conv4", "metric", channels=4).eval()


# --- binarize -----------------------------------------------------------------------

def test_binarize_min_maxes_each_image_then_thresholds_at_0_3():
    image = torch.tensor([0.2, 0.3, 0.32, 0.4, 1.0]).view(1, 1, 1, 5)
    # min-max: 0, 0.125, 0.15, 0.25, 1 -> only the last one exceeds 0.3
    assert binarize(image, 0.3).flatten().tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    faint = image * 0.1  # the same drawing, ten times fainter, binarizes the same
    assert torch.equal(binarize(faint, 0.3), binarize(image, 0.3))


def test_binarize_keeps_a_blank_image_blank_and_the_shape():
    blank = torch.full((2, 1, 48, 48), 0.7)
    result = binarize(blank)
    assert result.shape == blank.shape
    assert result.sum() == 0


# --- the task list ------------------------------------------------------------------

def test_every_category_is_the_target_of_exactly_tasks_per_category_tasks():
    tasks = recognizability_tasks(n_categories=30, ways=20, tasks_per_category=7, seed=0)
    assert torch.bincount(tasks.targets).tolist() == [7] * 30
    assert tasks.ways.shape == (210, 20)


def test_a_task_holds_its_target_and_distinct_categories():
    tasks = recognizability_tasks(n_categories=25, ways=20, tasks_per_category=10, seed=1)
    assert (tasks.ways == tasks.targets[:, None]).sum(dim=1).tolist() == [1] * 250
    assert all(len(set(row)) == 20 for row in tasks.ways.tolist())


def test_the_targets_place_in_a_task_is_spread_over_all_places():
    tasks = recognizability_tasks(n_categories=20, ways=5, tasks_per_category=100, seed=0)
    place = (tasks.ways == tasks.targets[:, None]).float().argmax(dim=1)
    counts = torch.bincount(place, minlength=5)
    assert counts.min() > 300  # 400 expected each, out of 2000


def test_the_task_list_depends_on_the_seed_alone():
    first = recognizability_tasks(40, 20, 5, seed=3)
    again = recognizability_tasks(40, 20, 5, seed=3)
    other = recognizability_tasks(40, 20, 5, seed=4)
    assert torch.equal(first.ways, again.ways)
    assert not torch.equal(first.ways, other.ways)


def test_tasks_cycle_through_few_drawings_and_spread_over_many():
    tasks = recognizability_tasks(n_categories=2, ways=2, tasks_per_category=10, seed=0)
    few = torch.tensor([0, 0, 0, 1, 1, 1, 1])  # 3 drawings of 0, 4 of 1
    chosen = task_queries(few, tasks)
    assert torch.bincount(chosen[:10]).tolist() == [4, 3, 3]
    many = torch.tensor([0] * 50 + [1] * 50)
    assert len(set(task_queries(many, tasks)[:10].tolist())) == 10


# --- recognizability ----------------------------------------------------------------

def test_copies_of_the_exemplar_are_fully_recognizable():
    exemplars = stroke_drawings(25)
    labels = torch.arange(25).repeat_interleave(3)
    tasks = recognizability_tasks(25, 20, 20, seed=0)
    accuracy = recognizability(tiny_critic(), exemplars, exemplars[labels], labels, tasks)
    assert accuracy.tolist() == [1.0] * 25


def test_pure_noise_is_recognized_at_chance_within_binomial_error():
    generator = torch.Generator().manual_seed(0)
    exemplars = stroke_drawings(40)
    noise = torch.rand(40 * 10, 1, 48, 48, generator=generator)
    labels = torch.arange(40).repeat_interleave(10)
    tasks = recognizability_tasks(40, 20, 50, seed=0)
    accuracy = recognizability(tiny_critic(), exemplars, noise, labels, tasks).mean()
    sigma = math.sqrt(0.05 * 0.95 / len(tasks.targets))
    assert abs(accuracy - 1 / 20) < 3 * sigma


def test_drawings_of_another_category_score_no_better_than_chance():
    exemplars = stroke_drawings(40)
    labels = torch.arange(40).repeat_interleave(5)
    neighbour = (labels + 1) % 40  # each category gets its neighbour's drawings
    misplaced = flip_pixels(exemplars[neighbour], count=30, seed=0)
    tasks = recognizability_tasks(40, 20, 50, seed=0)
    accuracy = recognizability(pixels, exemplars, misplaced, labels, tasks).mean()
    control = flip_pixels(exemplars[labels], count=30, seed=0)
    assert accuracy < 1 / 20
    assert recognizability(pixels, exemplars, control, labels, tasks).mean() == 1.0


# --- originality --------------------------------------------------------------------

def test_copies_of_the_exemplar_have_originality_zero():
    exemplars = stroke_drawings(6)
    labels = torch.arange(6).repeat_interleave(4)
    distance = originality(tiny_critic().features, exemplars, exemplars[labels], labels)
    assert distance.abs().max() < 1e-5


def test_originality_is_the_l2_distance_in_feature_space():
    exemplars = stroke_drawings(3)
    labels = torch.tensor([0, 0, 1, 2])
    drawings = torch.cat([flip_pixels(exemplars[[0]], 9, seed=1),
                          flip_pixels(exemplars[[0]], 25, seed=2),
                          flip_pixels(exemplars[[1]], 16, seed=3), exemplars[[2]]])
    # With pixels as features, k flipped pixels lie at distance √k.
    distance = originality(pixels, exemplars, drawings, labels)
    assert distance.tolist() == pytest.approx([(3 + 5) / 2, 4.0, 0.0])


def test_a_models_originality_weighs_every_category_equally():
    exemplars = stroke_drawings(2)
    drawings = torch.cat([flip_pixels(exemplars[[0]], 4, seed=0), exemplars[[1]].repeat(3, 1,
                                                                                      1, 1)])
    labels = torch.tensor([0, 1, 1, 1])
    table = score_drawings(recognizer=pixels, originality_features=pixels,
                           exemplars=exemplars, categories=["a", "b"], drawings=drawings,
                           labels=labels, ways=2, tasks_per_category=4, seed=0)
    assert table["originality"].tolist() == pytest.approx([2.0, 0.0])
    assert table["originality"].mean() == pytest.approx(1.0)  # not 2/4 per drawing
    assert table["n_samples"].tolist() == [1, 3]


# --- the study's plane --------------------------------------------------------------

def test_normalized_originality_spans_zero_to_one_over_all_entries():
    normalized = normalize_originality({"proto-500": 3.0, "pixel": 1.0, "human": 2.5})
    assert normalized == pytest.approx({"proto-500": 1.0, "pixel": 0.0, "human": 0.75})


def test_distance_to_human_is_euclidean_in_the_plane():
    distances = distance_to_human({"a": (0.5, 0.8), "b": (0.2, 0.4)}, human=(0.2, 0.4))
    assert distances == pytest.approx({"a": 0.5, "b": 0.0})
    array = distance_to_human(np.array([[0.5, 0.8], [0.2, 0.4]]), (0.2, 0.4))
    assert array.tolist() == pytest.approx([0.5, 0.0])
