"""Batched augmentations: one independent random transform per drawing."""
import torch

from latentsketch.augment import augment_batch, homography_from_points, warp


def cross(n=1):
    """A plus sign of ink on a blank 48×48 page, repeated n times."""
    images = torch.zeros(n, 1, 48, 48)
    images[:, :, 12:36, 22:26] = 1.0
    images[:, :, 22:26, 12:36] = 1.0
    return images


def test_augmented_batch_keeps_shape_dtype_and_ink_range():
    views = augment_batch(cross(16), torch.Generator().manual_seed(0))
    assert views.shape == (16, 1, 48, 48) and views.dtype == torch.float32
    assert views.min().item() >= 0.0 and views.max().item() <= 1.0


def test_identical_drawings_get_different_views():
    images = cross(32)
    views = augment_batch(images, torch.Generator().manual_seed(0)).flatten(1)
    # The perspective leaves a drawing as it is half of the time (p = 0.5).
    changed = views[(views - images.flatten(1)).abs().amax(dim=1) > 1e-4]
    distances = torch.cdist(changed, changed)
    assert len(changed) >= 20
    assert distances[~torch.eye(len(changed), dtype=torch.bool)].min().item() > 0.0


def test_a_drawings_view_does_not_depend_on_its_batch_neighbours():
    batch = cross(8)
    other = batch.clone()
    other[1:] = torch.rand(7, 1, 48, 48)  # change every other drawing
    first = augment_batch(batch, torch.Generator().manual_seed(3))
    second = augment_batch(other, torch.Generator().manual_seed(3))
    assert torch.equal(first[0], second[0])


def test_same_seed_gives_the_same_views_on_the_cpu():
    images = torch.rand(8, 1, 48, 48)
    first = augment_batch(images, torch.Generator().manual_seed(7))
    again = augment_batch(images, torch.Generator().manual_seed(7))
    other = augment_batch(images, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_identity_homography_returns_the_drawing_unchanged():
    images = torch.rand(3, 1, 48, 48)
    assert torch.allclose(warp(images, torch.eye(3).repeat(3, 1, 1)), images, atol=1e-4)


def test_homography_from_points_maps_the_four_corners_exactly():
    source = torch.tensor([[[-0.8, -0.9], [0.7, -1.0], [1.0, 0.6], [-1.0, 0.9]]],
                          dtype=torch.float64)
    target = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]],
                          dtype=torch.float64)
    matrix = homography_from_points(source, target)[0]
    points = torch.cat([source[0], torch.ones(4, 1, dtype=torch.float64)], dim=1)
    mapped = points @ matrix.T
    assert torch.allclose(mapped[:, :2] / mapped[:, 2:], target[0], atol=1e-10)


def test_views_keep_most_of_the_drawing_visible():
    images = cross(64)
    views = augment_batch(images, torch.Generator().manual_seed(0))
    ink_kept = views.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    # Crops zoom in (more ink), zoom-outs and perspective shrink; none erases the drawing.
    assert ink_kept.min().item() > 0.2
    assert (ink_kept.median().item() > 0.5) and (ink_kept.median().item() < 4.0)
