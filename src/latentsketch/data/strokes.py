"""Quick, Draw! strokes to 48×48 grey drawings at a fixed line width.

A drawing is a list of strokes, each a 2×P array of x and y coordinates (raw
files: canvas pixels; simplified files: 0..255). Every drawing is scaled to fit
the image with its aspect ratio kept and its bounding box centred, so the line
width is the same in every drawing whatever the size it was drawn at.

A pixel's ink is clip(w/2 + 1/2 - d, 0, 1), d the distance from the pixel's
centre to the nearest stroke and w the line width: round caps and joints, edges
antialiased over one pixel, and no dependence on where the drawing falls on the
pixel grid beyond that (a rasterizer that rounds coordinates shifts strokes by
up to a pixel). Strokes are cut into pieces at most one pixel long, so each
piece touches only a small window of pixels, and whole batches of drawings are
rendered at once.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from latentsketch.io import IMAGE_SIZE

Strokes = list[np.ndarray]
BATCH = 64  # drawings rendered together (a long raw drawing has ~1,000 pieces)


def fit_to_image(strokes: Strokes, size: int, line_width: float,
                 margin: float) -> Strokes:
    """Map coordinates to image pixels (pixel i spans [i, i + 1)), aspect kept."""
    points = np.concatenate(strokes, axis=1)
    low, high = points.min(axis=1), points.max(axis=1)
    extent = float((high - low).max())
    room = size - 2 * margin - line_width  # the span of the stroke centres
    scale = room / extent if extent > 0 else 0.0
    centre = (low + high) / 2
    return [(stroke - centre[:, None]) * scale + size / 2 for stroke in strokes]


def render(strokes: Strokes, size: int = IMAGE_SIZE, line_width: float = 2.0,
           margin: float = 2.0) -> np.ndarray:
    """One drawing to a size×size uint8 image, ink = 255."""
    return render_many([strokes], size, line_width, margin)[0]


def render_many(drawings: list[Strokes], size: int = IMAGE_SIZE,
                line_width: float = 2.0, margin: float = 2.0) -> np.ndarray:
    """N drawings to N×size×size uint8 images, ink = 255."""
    images = np.zeros((len(drawings), size, size), dtype=np.uint8)
    for start in range(0, len(drawings), BATCH):
        batch = drawings[start:start + BATCH]
        segments, owner = _segments(batch, size, line_width, margin)
        ink = _ink(_pieces(segments), owner, len(batch), size, line_width / 2)
        images[start:start + len(batch)] = ink.mul(255).round().to(torch.uint8).numpy()
    return images


def _segments(drawings: list[Strokes], size: int, line_width: float,
              margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Every stroke segment (S×2×2: start, end) and the drawing it belongs to."""
    segments, owner = [], []
    for index, strokes in enumerate(drawings):
        for stroke in fit_to_image(strokes, size, line_width, margin):
            points = stroke.T
            if len(points) == 1:  # a dot: a segment of length zero
                points = np.concatenate([points, points])
            segments.append(np.stack([points[:-1], points[1:]], axis=1))
            owner.append(np.full(len(points) - 1, index))
    return np.concatenate(segments), np.concatenate(owner)


def _pieces(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut segments into pieces at most one pixel long; returns (pieces, segment)."""
    length = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
    cuts = np.maximum(1, np.ceil(length)).astype(np.int64)
    segment = np.repeat(np.arange(len(segments)), cuts)
    step = np.arange(cuts.sum()) - np.repeat(np.cumsum(cuts) - cuts, cuts)
    start, end = segments[segment, 0], segments[segment, 1]
    fraction = (step / cuts[segment])[:, None]
    after = ((step + 1) / cuts[segment])[:, None]
    pieces = np.stack([start + (end - start) * fraction,
                       start + (end - start) * after], axis=1)
    return pieces, segment


def _ink(pieces_and_segment: tuple[np.ndarray, np.ndarray], owner: np.ndarray,
         count: int, size: int, radius: float) -> torch.Tensor:
    """count×size×size ink in [0, 1]: the maximum coverage over every piece."""
    pieces, segment = pieces_and_segment
    pieces = torch.from_numpy(pieces).float()
    drawing = torch.from_numpy(owner[segment])
    # A piece lies within 1/2 pixel of its middle m, so it inks pixel i only if
    # |i + 1/2 - m| <= radius + 1: i - floor(m) in -reach..reach.
    reach = math.ceil(radius + 1.5) - 1
    offsets = torch.arange(-reach, reach + 1)
    middle = pieces.mean(1).floor().long()
    xs = (middle[:, 0, None, None] + offsets[None, None, :]).expand(-1, len(offsets), -1)
    ys = (middle[:, 1, None, None] + offsets[None, :, None]).expand(-1, -1, len(offsets))
    centres = torch.stack([xs, ys], dim=-1).float() + 0.5
    ends = pieces[:, None, None]  # broadcast over the window
    distance = _distance_to_piece(centres, ends[..., 0, :], ends[..., 1, :])
    coverage = (radius + 0.5 - distance).clamp(0, 1)
    inside = (coverage > 0) & (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
    flat = (drawing[:, None, None] * size + ys) * size + xs
    ink = torch.zeros(count * size * size)
    ink.scatter_reduce_(0, flat[inside], coverage[inside], reduce="amax")
    return ink.view(count, size, size)


def _distance_to_piece(points: torch.Tensor, start: torch.Tensor,
                       end: torch.Tensor) -> torch.Tensor:
    """Distance from points to the segments start–end (broadcast over the front)."""
    along = end - start
    squared = (along * along).sum(-1)
    t = ((points - start) * along).sum(-1) / squared.clamp(min=1e-12)
    nearest = start + t.clamp(0, 1).unsqueeze(-1) * along
    return (points - nearest).norm(dim=-1)


def parse_strokes(drawing: object) -> Strokes:
    """The `drawing` field of an ndjson line to a list of 2×P float arrays.

    Raises ValueError when it is not a list of [x..., y..., (t...)] strokes.
    """
    if not isinstance(drawing, list) or not drawing:
        raise ValueError("`drawing` is not a non-empty list of strokes")
    strokes = []
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) < 2:
            raise ValueError("a stroke is not [[x...], [y...]]")
        xs, ys = stroke[0], stroke[1]
        if not xs or len(xs) != len(ys):
            raise ValueError("a stroke has no points or unequal x and y lengths")
        try:
            strokes.append(np.array([xs, ys], dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError("a stroke holds values that are not numbers") from error
    return strokes
