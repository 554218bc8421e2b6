"""Augmented views for the contrastive regularizers (paper A.2.3), batched.

Each drawing gets one transform picked at random among a random resized crop,
a random affine map and a random perspective, with its own random draw. Every
transform is a 3×3 homography from output to input coordinates, so the whole
batch is warped by one `grid_sample` call, on the CPU or the GPU alike.

Coordinates are normalized to [−1, 1] with the image center at 0 (the
convention of `grid_sample` with align_corners=False). Areas outside the
source image read as background (0).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

CROP_SCALE = (0.1, 0.9)  # fraction of the image area kept by the crop
CROP_RATIO = (0.8, 1.2)  # aspect ratio (width / height) of the crop
AFFINE_DEGREES = 15.0
AFFINE_TRANSLATE_PX = 5.0
AFFINE_ZOOM = (0.75, 1.25)
AFFINE_SHEAR_DEGREES = 10.0
PERSPECTIVE_DISTORTION = 0.5
PERSPECTIVE_P = 0.5
N_TRANSFORMS = 3  # crop, affine, perspective


def augment_batch(images: Tensor, generator: torch.Generator) -> Tensor:
    """One randomly chosen, randomly drawn transform per image of an N×1×H×W batch."""
    n, _, height, width = images.shape
    draw = _Draw(n, generator)
    choice = draw.integers(N_TRANSFORMS)
    candidates = torch.stack([resized_crop_homographies(draw),
                              affine_homographies(draw, width),
                              perspective_homographies(draw)])
    homographies = candidates[choice, torch.arange(n, device=choice.device)]
    return warp(images, homographies.to(images.device, images.dtype))


class _Draw:
    """Uniform draws for n images from one generator, on the generator's device.

    Every transform is drawn for every image (then one is kept), so that an
    image's draw does not depend on which transforms the others picked.
    """

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator

    def uniform(self, low: float, high: float, *shape: int) -> Tensor:
        u = torch.rand(self.n, *shape, generator=self.generator,
                       device=self.generator.device, dtype=torch.float64)
        return low + (high - low) * u

    def integers(self, high: int) -> Tensor:
        return torch.randint(high, (self.n,), generator=self.generator,
                             device=self.generator.device)


def _matrices(n: int, device: torch.device) -> Tensor:
    return torch.eye(3, dtype=torch.float64, device=device).repeat(n, 1, 1)


def resized_crop_homographies(draw: _Draw) -> Tensor:
    """Crop a random box (area and aspect ratio drawn) and stretch it to the image."""
    area = draw.uniform(*CROP_SCALE)
    log_ratio = draw.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    # Box width and height as fractions of the image side; never larger than it.
    box_w = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)
    box_h = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    center_x = (draw.uniform(-1, 1)) * (1 - box_w)
    center_y = (draw.uniform(-1, 1)) * (1 - box_h)
    matrix = _matrices(draw.n, area.device)
    matrix[:, 0, 0], matrix[:, 0, 2] = box_w, center_x
    matrix[:, 1, 1], matrix[:, 1, 2] = box_h, center_y
    return matrix


def affine_homographies(draw: _Draw, size: int) -> Tensor:
    """Rotate, shear, zoom and translate about the center; return the inverse map."""
    angle = torch.deg2rad(draw.uniform(-AFFINE_DEGREES, AFFINE_DEGREES))
    shear = torch.deg2rad(draw.uniform(-AFFINE_SHEAR_DEGREES, AFFINE_SHEAR_DEGREES))
    zoom = draw.uniform(*AFFINE_ZOOM)
    shift = draw.uniform(-AFFINE_TRANSLATE_PX, AFFINE_TRANSLATE_PX, 2) * (2.0 / size)
    forward = _matrices(draw.n, zoom.device)
    # Rotation by `angle` composed with an x-shear by `shear`, scaled by `zoom`.
    forward[:, 0, 0] = zoom * torch.cos(angle)
    forward[:, 0, 1] = zoom * (torch.cos(angle) * torch.tan(shear) - torch.sin(angle))
    forward[:, 1, 0] = zoom * torch.sin(angle)
    forward[:, 1, 1] = zoom * (torch.sin(angle) * torch.tan(shear) + torch.cos(angle))
    forward[:, :2, 2] = shift
    # grid_sample asks, for each output pixel, where to read in the input.
    return torch.linalg.inv(forward)


def perspective_homographies(draw: _Draw) -> Tensor:
    """Move each corner inwards by up to distortion × half the side, with prob. p."""
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]],
                           dtype=torch.float64, device=draw.generator.device)
    inward = -corners  # each corner moves towards the center
    offsets = draw.uniform(0, PERSPECTIVE_DISTORTION, 4, 2) * inward
    applied = draw.uniform(0, 1) < PERSPECTIVE_P
    moved = corners + offsets * applied[:, None, None]
    # The output shows the input's corners at the moved positions: map moved → corners.
    return homography_from_points(moved, corners.expand_as(moved))


def homography_from_points(source: Tensor, target: Tensor) -> Tensor:
    """The N×3×3 homographies taking 4 source points to 4 target points (N×4×2 each)."""
    x, y = source[..., 0], source[..., 1]
    u, v = target[..., 0], target[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    # Two linear equations per point pair in the 8 unknowns h11..h32 (h33 = 1).
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)
    system = torch.cat([rows_u, rows_v], dim=1)
    solution = torch.linalg.solve(system, torch.cat([u, v], dim=1))
    return torch.cat([solution, torch.ones_like(solution[:, :1])], dim=1).view(-1, 3, 3)


def warp(images: Tensor, homographies: Tensor) -> Tensor:
    """Resample each image at its homography's image of the output pixel centers."""
    n, _, height, width = images.shape
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, device=images.device)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, device=images.device)
    grid_y, grid_x = (g.reshape(1, -1).to(images.dtype)
                      for g in torch.meshgrid(ys, xs, indexing="ij"))
    # Written out rather than as a batched matmul, which is slow for 3×3 factors.
    h = homographies[:, :, :, None]
    u = h[:, 0, 0] * grid_x + h[:, 0, 1] * grid_y + h[:, 0, 2]
    v = h[:, 1, 0] * grid_x + h[:, 1, 1] * grid_y + h[:, 1, 2]
    w = h[:, 2, 0] * grid_x + h[:, 2, 1] * grid_y + h[:, 2, 2]
    grid = torch.stack([u / w, v / w], dim=-1).reshape(n, height, width, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)
