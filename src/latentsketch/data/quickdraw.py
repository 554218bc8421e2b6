"""QuickDraw-FS: visually consistent categories built from Quick, Draw! drawings.

Steps (SPEC §1): read each source category (raw or simplified ndjson strokes
rendered at a fixed line width, or 28×28 numpy_bitmap upsampled), cluster it
with seeded k-means in a fixed feature space, keep every cluster with at least
`n_per_class` members as one category "<source category>/cNN" holding its
`n_per_class` most central drawings, then split categories into train and test
at random with the seed.

Files are named as in the official bucket: `<format>/<category>.ndjson` (raw,
simplified) or `numpy_bitmap/<category>.npy`, under `prepare.source`.
"""
from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from latentsketch.config import PrepareParams, QuickDrawParams
from latentsketch.data.clusters import Cluster, cluster_category, one_thread
from latentsketch.data.prepare import drawings_table
from latentsketch.data.quickdraw_names import OFFICIAL_CATEGORIES
from latentsketch.data.sources import QUICKDRAW_OFFICIAL, Source, open_source
from latentsketch.data.strokes import parse_strokes, render_many
from latentsketch.errors import InputError
from latentsketch.io import IMAGE_SIZE

log = logging.getLogger("latentsketch")

DATASET = "quickdraw-fs"
BITMAP_SIDE = 28
SUFFIX = {"raw": ".ndjson", "simplified": ".ndjson", "numpy_bitmap": ".npy"}


@dataclass(frozen=True)
class SourceDrawings:
    """The drawings read from one Quick, Draw! category file."""
    images: np.ndarray  # N×48×48 uint8, ink = 255
    drawers: np.ndarray  # key_id (ndjson) or row number (numpy_bitmap), as str


@dataclass(frozen=True)
class Group:
    """One kept cluster: a QuickDraw-FS category in the making."""
    source_category: str
    cluster: Cluster
    drawings: SourceDrawings

    @property
    def name(self) -> str:
        return f"{self.source_category}/c{self.cluster.rank:02d}"


def prepare_quickdraw(params: PrepareParams, seed: int) -> pd.DataFrame:
    knobs = params.quickdraw
    check_knobs(knobs)
    source = open_source(params.source, QUICKDRAW_OFFICIAL, params.cache,
                         params.download_retries)
    groups = []
    for name in tqdm(source_categories(source, knobs), desc="quickdraw", unit="category"):
        with one_thread():  # small array operations: threads cost more than they give
            drawings = read_category(source, name, knobs)
        kept = cluster_category(
            drawings.images, clusters=knobs.clusters_per_category,
            n_per_class=knobs.n_per_class, min_cohesion=knobs.min_cohesion,
            sigma=knobs.feature_sigma, generator=category_generator(seed, name))
        log.info("quickdraw: %s: %d drawings, %d of %d clusters kept", name,
                 len(drawings.images), len(kept), knobs.clusters_per_category)
        groups.extend(Group(name, c, _take(drawings, c.members)) for c in kept)
    groups = most_cohesive(groups, knobs.max_categories)
    if not groups:
        raise InputError(f"params prepare.quickdraw: no cluster reached n_per_class = "
                         f"{knobs.n_per_class} drawings; lower n_per_class, "
                         "clusters_per_category or min_cohesion, or raise "
                         "max_drawings_per_category.")
    return _table(groups, split_categories([g.name for g in groups],
                                           knobs.test_fraction, seed))


def check_knobs(knobs: QuickDrawParams) -> None:
    room = IMAGE_SIZE - 2 * knobs.margin - knobs.line_width
    if room <= 0 or knobs.line_width <= 0:
        raise InputError(f"params prepare.quickdraw: line_width {knobs.line_width} and "
                         f"margin {knobs.margin} leave no room in a {IMAGE_SIZE}-pixel "
                         "image; use a positive line_width and a smaller margin.")
    if knobs.n_per_class < 1 or knobs.clusters_per_category < 1:
        raise InputError("params prepare.quickdraw: n_per_class and "
                         "clusters_per_category must be at least 1; fix them.")
    if not 0 < knobs.test_fraction < 1:
        raise InputError(f"params prepare.quickdraw.test_fraction: {knobs.test_fraction} "
                         "is not between 0 and 1; the paper's is 115/665 = 0.1729.")


def source_categories(source: Source, knobs: QuickDrawParams) -> list[str]:
    """The categories asked for; by default every file of a mirror, or all 345."""
    if knobs.categories:
        return list(knobs.categories)
    if source.remote:
        return list(OFFICIAL_CATEGORIES)
    names = source.listing(knobs.format, SUFFIX[knobs.format])
    if not names:
        raise InputError(f"Quick, Draw! folder {Path(source.base) / knobs.format}: no "
                         f"{SUFFIX[knobs.format]} files; fix prepare.source or "
                         "prepare.quickdraw.format.")
    return names


def category_generator(seed: int, category: str) -> torch.Generator:
    """A generator per category, so adding a category leaves the others' clusters."""
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + zlib.crc32(category.encode())) % 2**62)
    return generator


def most_cohesive(groups: list[Group], limit: int) -> list[Group]:
    """At most `limit` groups (0: all), in their first order.

    Spread over the source categories: every category's most cohesive cluster
    comes before any category's second one, and so on, most cohesive first
    within a round; so no source category is dropped while another keeps two.
    """
    if limit <= 0 or len(groups) <= limit:
        return groups
    place_in_source = {}
    for source in {g.source_category for g in groups}:
        own = [i for i, g in enumerate(groups) if g.source_category == source]
        own.sort(key=lambda i: -groups[i].cluster.cohesion)
        place_in_source.update({i: place for place, i in enumerate(own)})
    ranked = sorted(range(len(groups)), key=lambda i: (
        place_in_source[i], -groups[i].cluster.cohesion, groups[i].name))
    return [groups[i] for i in sorted(ranked[:limit])]


def split_categories(categories: list[str], test_fraction: float,
                     seed: int) -> dict[str, str]:
    """Seeded random category split; at least one category on each side."""
    names = sorted(categories)
    test_count = round(test_fraction * len(names))
    test_count = min(max(test_count, 1), len(names) - 1) if len(names) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(names))
    test = {names[i] for i in order[:test_count]}
    return {name: "test" if name in test else "train" for name in names}


def _take(drawings: SourceDrawings, rows: np.ndarray) -> SourceDrawings:
    return SourceDrawings(drawings.images[rows], drawings.drawers[rows])


def _table(groups: list[Group], splits: dict[str, str]) -> pd.DataFrame:
    sizes = [len(g.drawings.images) for g in groups]
    return drawings_table(
        dataset=DATASET,
        split=np.repeat([splits[g.name] for g in groups], sizes),
        category=np.repeat([g.name for g in groups], sizes),
        alphabet=np.repeat([g.source_category for g in groups], sizes),
        drawer=np.concatenate([g.drawings.drawers for g in groups]),
        images=np.concatenate([g.drawings.images for g in groups]))


# --- readers ------------------------------------------------------------------------

def read_category(source: Source, category: str,
                  knobs: QuickDrawParams) -> SourceDrawings:
    """The first `max_drawings_per_category` drawings of one category file."""
    relative = f"{knobs.format}/{category}{SUFFIX[knobs.format]}"
    what = f"Quick, Draw! category {category!r}"
    if knobs.format == "numpy_bitmap":
        drawings = read_numpy_bitmap(source.locate(relative, what),
                                     knobs.max_drawings_per_category)
    else:
        # Unrecognized drawings are skipped, so fetch more lines than we keep.
        lines = knobs.max_drawings_per_category * (2 if knobs.recognized_only else 1)
        drawings = read_ndjson(source.locate(relative, what, max_lines=lines), knobs)
    if len(drawings.images) == 0:
        raise InputError(f"{what} ({relative}): no usable drawings; check the file, or "
                         "set recognized_only: false, or drop the category from "
                         "prepare.quickdraw.categories.")
    return drawings


def read_ndjson(path: Path, knobs: QuickDrawParams) -> SourceDrawings:
    """Raw or simplified ndjson: render each kept drawing's strokes to 48×48."""
    drawings, drawers, seen = [], [], set()
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if len(drawings) >= knobs.max_drawings_per_category:
                break
            if not line.strip():
                continue
            record = _parse_line(line, path, number)
            key = str(record.get("key_id", f"line{number:07d}"))
            unrecognized = knobs.recognized_only and not record.get("recognized", True)
            if unrecognized or key in seen:
                continue
            seen.add(key)
            drawings.append(_strokes(record, path, number))
            drawers.append(key)
    images = render_many(drawings, IMAGE_SIZE, knobs.line_width, knobs.margin)
    return SourceDrawings(images, np.array(drawers, dtype=object))


def _parse_line(line: str, path: Path, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"Quick, Draw! file {path}, line {number}: not valid JSON "
                         f"({error.msg}); the file is truncated or corrupt: delete it "
                         "and download it again, or cut the line.") from error
    if not isinstance(record, dict) or "drawing" not in record:
        raise InputError(f"Quick, Draw! file {path}, line {number}: no `drawing` field; "
                         "use the official raw or simplified ndjson files.")
    return record


def _strokes(record: dict, path: Path, number: int) -> list[np.ndarray]:
    try:
        return parse_strokes(record["drawing"])
    except ValueError as error:
        raise InputError(f"Quick, Draw! file {path}, line {number}: {error}; use the "
                         "official raw or simplified ndjson files.") from error


def read_numpy_bitmap(path: Path, limit: int) -> SourceDrawings:
    """numpy_bitmap N×784 (28×28, ink high) to N×48×48 by bilinear upsampling."""
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"Quick, Draw! file {path}: not a readable .npy ({error}); "
                         "delete it and download it again.") from error
    expected = (bitmaps.ndim == 2 and bitmaps.shape[1] == BITMAP_SIDE ** 2
                and bitmaps.dtype == np.uint8)
    if not expected:
        raise InputError(f"Quick, Draw! file {path}: array of shape {bitmaps.shape} and "
                         f"type {bitmaps.dtype}, where numpy_bitmap files hold N×784 "
                         "uint8 (28×28 drawings); use the official numpy_bitmap files.")
    rows = np.array(bitmaps[:limit])  # a writable copy of the memory map
    small = torch.from_numpy(rows).view(-1, 1, BITMAP_SIDE, BITMAP_SIDE).float()
    large = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                          align_corners=False)
    images = large.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()
    drawers = np.array([f"row{i:07d}" for i in range(len(rows))], dtype=object)
    return SourceDrawings(images, drawers)
