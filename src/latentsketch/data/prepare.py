"""The prepare stage's library side: one data set in, one drawings table out.

The table's columns and order are fixed by `latentsketch.data.tables`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from latentsketch.config import PrepareParams
from latentsketch.data.tables import DRAWING_COLUMNS
from latentsketch.errors import InputError
from latentsketch.io import images_to_column

SPLITS = ("train", "test")


def prepare_drawings(params: PrepareParams, seed: int) -> pd.DataFrame:
    """Read the data set named by `params` and return the drawings table."""
    if params.dataset == "omniglot":
        from latentsketch.data.omniglot import prepare_omniglot

        return prepare_omniglot(params)
    if params.dataset == "quickdraw":
        from latentsketch.data.quickdraw import prepare_quickdraw

        return prepare_quickdraw(params, seed)
    raise InputError(f"params prepare.dataset: unknown data set {params.dataset!r}; "
                     "use omniglot or quickdraw.")


def drawings_table(*, dataset: str, split: list[str] | np.ndarray,
                   category: list[str] | np.ndarray, alphabet: list[str] | np.ndarray,
                   drawer: list[str] | np.ndarray, images: np.ndarray) -> pd.DataFrame:
    """Assemble the table: sorted by category then drawer, drawing_id = row number."""
    meta = pd.DataFrame({"split": split, "category": category, "alphabet": alphabet,
                         "drawer": drawer})
    if len(meta) != len(images):
        raise ValueError(f"{len(meta)} rows of metadata for {len(images)} images")
    if meta.duplicated(["category", "drawer"]).any():
        raise ValueError("two drawings share a category and a drawer")
    order = meta.sort_values(["category", "drawer"], kind="stable").index.to_numpy()
    table = meta.iloc[order].reset_index(drop=True)
    table.insert(0, "drawing_id", np.arange(len(table), dtype=np.int64))
    table.insert(1, "dataset", dataset)
    table["pixels"] = images_to_column(images[order])
    return table[list(DRAWING_COLUMNS)]


def summarize(table: pd.DataFrame) -> dict:
    """Counts per split for metrics/prepare.json."""
    summary = {"dataset": str(table["dataset"].iloc[0]),
               "categories": int(table["category"].nunique()), "drawings": len(table)}
    for split in SPLITS:
        rows = table[table["split"] == split]
        summary[split] = {"categories": int(rows["category"].nunique()),
                          "drawings": len(rows)}
    return summary
