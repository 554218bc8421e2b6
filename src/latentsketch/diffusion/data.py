"""What the diffusion stages read: (variation, exemplar) pairs and test exemplars.

Latent models read the encode stage's tables in models/<key>/latents/:
    drawings.parquet   drawing_id, category, split, latent (list<float32>)
    exemplars.parquet  category, split, drawing_id, latent
The pixel baseline reads data/prepared and data/exemplars (data/tables.py).
Each training drawing is paired with its own category's exemplar.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentsketch import paths
from latentsketch.data.tables import load_drawings, load_exemplars
from latentsketch.errors import InputError
from latentsketch.io import column_to_latents, images_to_tensor, read_parquet

LATENT_DRAWINGS = "drawings.parquet"
LATENT_EXEMPLARS = "exemplars.parquet"


def exemplar_rows(categories: pd.Series, exemplar_categories: pd.Series,
                  where: str) -> np.ndarray:
    """Row of each category's exemplar in the exemplar table, per drawing."""
    row_of = {category: row for row, category in enumerate(exemplar_categories)}
    missing = sorted(set(categories) - set(row_of))
    if missing:
        raise InputError(f"{where}: no exemplar for {len(missing)} categories (e.g. "
                         f"{missing[0]!r}); rerun the exemplars and encode stages on the "
                         "current prepared data.")
    return categories.map(row_of).to_numpy()


def _latent_tables(latents_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    drawings = read_parquet(latents_dir / LATENT_DRAWINGS, "latents")
    exemplars = read_parquet(latents_dir / LATENT_EXEMPLARS, "exemplar latents")
    for table, name in ((drawings, LATENT_DRAWINGS), (exemplars, LATENT_EXEMPLARS)):
        missing = {"category", "split", "drawing_id", "latent"} - set(table.columns)
        if missing:
            raise InputError(f"latents {latents_dir / name}: missing columns "
                             f"{sorted(missing)}; rerun the encode stage.")
    return drawings, exemplars


def latent_training_pairs(latents_dir: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents, exemplar latents) of every training drawing, row-aligned, float32."""
    drawings, exemplars = _latent_tables(Path(latents_dir))
    train = drawings[drawings["split"] == "train"].reset_index(drop=True)
    rows = exemplar_rows(train["category"], exemplars["category"],
                         f"latents {latents_dir}")
    exemplar_latents = column_to_latents(exemplars["latent"])
    return (torch.from_numpy(column_to_latents(train["latent"])),
            torch.from_numpy(exemplar_latents[rows]))


def pixel_training_pairs(prepared: str | Path = paths.PREPARED,
                         exemplars: str | Path = paths.EXEMPLARS
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, exemplar images) of every training drawing, N×1×48×48 in [0, 1]."""
    train = load_drawings(prepared).split("train")
    exemplar_table = load_exemplars(exemplars)
    rows = exemplar_rows(train.table["category"], exemplar_table.table["category"],
                         f"exemplars {exemplars}")
    return images_to_tensor(train.images), images_to_tensor(exemplar_table.images[rows])


def unseen_exemplar_latents(latents_dir: str | Path) -> tuple[pd.DataFrame, torch.Tensor]:
    """Test-split exemplars (category, drawing_id), sorted by category, and their latents.

    These categories were never seen in training: the one-shot task samples them.
    """
    _, exemplars = _latent_tables(Path(latents_dir))
    test = exemplars[exemplars["split"] == "test"]
    test = test.sort_values("category", kind="stable").reset_index(drop=True)
    _require_some(test, f"exemplar latents {latents_dir}")
    latents = torch.from_numpy(column_to_latents(test["latent"]))
    return test[["category", "drawing_id"]], latents


def unseen_exemplar_images(exemplars: str | Path = paths.EXEMPLARS
                           ) -> tuple[pd.DataFrame, torch.Tensor]:
    """Test-split exemplars (category, drawing_id), sorted by category, as images."""
    table = load_exemplars(exemplars)
    test = table.subset(table.table["split"].to_numpy() == "test")
    _require_some(test.table, f"exemplars {exemplars}")
    order = np.argsort(test.table["category"].to_numpy(), kind="stable")
    rows = test.table.iloc[order][["category", "drawing_id"]].reset_index(drop=True)
    return rows, images_to_tensor(test.images[order])


def _require_some(test: pd.DataFrame, where: str) -> None:
    if test.empty:
        raise InputError(f"{where}: no test exemplars; the prepare stage must keep test "
                         "categories (prepare.test_characters > 0).")
