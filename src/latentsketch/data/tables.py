"""The prepared drawings and exemplars tables, as every later stage reads them.

drawings.parquet, one row per drawing, sorted by category then drawer:
    drawing_id (int64, 0..N-1)  dataset (str)  split ("train" | "test")
    category (str, unique across the data set, e.g. "Greek/character01")
    alphabet (str: Omniglot alphabet, or the Quick, Draw! source category)
    drawer (str)  pixels (48×48 uint8 bytes, ink = 255, background = 0)

exemplars.parquet, one row per category (its medoid), sorted by category:
    category  split  drawing_id  pixels
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentsketch import paths
from latentsketch.errors import InputError
from latentsketch.io import column_to_images, read_parquet

DRAWING_COLUMNS = ("drawing_id", "dataset", "split", "category", "alphabet", "drawer",
                   "pixels")
EXEMPLAR_COLUMNS = ("category", "split", "drawing_id", "pixels")


@dataclass(frozen=True)
class Drawings:
    """Metadata rows (no pixel column) and the matching N×48×48 uint8 images."""
    table: pd.DataFrame
    images: np.ndarray

    def subset(self, mask: np.ndarray | pd.Series) -> "Drawings":
        mask = np.asarray(mask, dtype=bool)
        return Drawings(self.table[mask].reset_index(drop=True), self.images[mask])

    def split(self, name: str) -> "Drawings":
        return self.subset(self.table["split"].to_numpy() == name)


def _load(path: Path, columns: tuple[str, ...], what: str) -> Drawings:
    table = read_parquet(path, what)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what} {path}: missing columns {missing}; regenerate it with "
                         "`dvc repro`.")
    images = column_to_images(table["pixels"])
    return Drawings(table.drop(columns="pixels").reset_index(drop=True), images)


def load_drawings(path: str | Path = paths.PREPARED) -> Drawings:
    return _load(Path(path), DRAWING_COLUMNS, "prepared drawings")


def load_exemplars(path: str | Path = paths.EXEMPLARS) -> Drawings:
    return _load(Path(path), EXEMPLAR_COLUMNS, "exemplars")
