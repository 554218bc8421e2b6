"""Exemplars: the medoid of each category, in blurred or raw pixel space."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentsketch.config import ExemplarParams
from test_data_omniglot import load_stage
from latentsketch.data.exemplars import (batched_medoids, gaussian_blur, medoid_index,
                                         select_exemplars)
from latentsketch.data.tables import (EXEMPLAR_COLUMNS, Drawings, load_drawings,
                                      load_exemplars)

ROOT = Path(__file__).resolve().parents[1]


def test_medoid_of_a_square_and_its_centre_is_the_centre():
    points = torch.tensor([[0, 0], [2, 0], [0, 2], [2, 2], [1, 1]], dtype=torch.float64)
    assert medoid_index(points) == 4


def test_medoid_on_a_line_is_the_point_with_the_smallest_mean_distance():
    # Mean distances to the others: 0 -> 13/3, 1 -> 11/3, 3 -> 11/3, 9 -> 23/3,
    # a tie between 1 and 3 that goes to the first row.
    points = torch.tensor([[0.0], [1.0], [3.0], [9.0]], dtype=torch.float64)
    assert medoid_index(points) == 1
    assert medoid_index(points.flip(0)) == 1  # now the row of 3


def test_batched_medoids_match_one_category_at_a_time():
    features = torch.randn(6, 9, 5, generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64)
    expected = [medoid_index(category) for category in features]
    assert batched_medoids(features).tolist() == expected


def test_blur_spreads_a_dot_into_a_normalised_gaussian():
    dot = torch.zeros(1, 48, 48, dtype=torch.float64)
    dot[0, 24, 24] = 1.0
    blurred = gaussian_blur(dot, sigma=2.0)[0]
    assert abs(float(blurred.sum()) - 1.0) < 1e-12  # no ink lost away from the border
    assert blurred.argmax() == 24 * 48 + 24
    ratio = float(blurred[24, 26] / blurred[24, 24])
    assert abs(ratio - np.exp(-0.5 * (2 / 2.0) ** 2)) < 1e-12


def bars(columns: list[int], category: str) -> tuple[np.ndarray, pd.DataFrame]:
    """One drawing per column: a vertical bar one pixel wide."""
    images = np.zeros((len(columns), 48, 48), dtype=np.uint8)
    for i, column in enumerate(columns):
        images[i, 10:38, column] = 255
    table = pd.DataFrame({"drawing_id": range(len(columns)), "split": "test",
                          "category": category, "drawer": [f"{c:02d}" for c in columns]})
    return images, table


def test_blurred_pixels_see_nearby_strokes_as_close_and_raw_pixels_do_not():
    images, table = bars([10, 11, 12, 30], "bars")
    drawings = Drawings(table, images)
    blur = select_exemplars(drawings, ExemplarParams(feature="blur", blur_sigma=2.0))
    pixels = select_exemplars(drawings, ExemplarParams(feature="pixels"))
    assert blur["drawing_id"].tolist() == [1]  # the middle of the three close bars
    assert pixels["drawing_id"].tolist() == [0]  # every pair is equally far: a tie


def test_exemplars_table_has_one_row_per_category_with_its_medoids_pixels():
    first, table_a = bars([5, 6, 7], "b/one")
    second, table_b = bars([20, 40, 41, 42], "a/two")
    table_b["drawing_id"] += 3
    table_b["split"] = "train"
    drawings = Drawings(pd.concat([table_a, table_b], ignore_index=True),
                        np.concatenate([first, second]))
    exemplars = select_exemplars(drawings, ExemplarParams())
    assert tuple(exemplars.columns) == EXEMPLAR_COLUMNS
    assert exemplars["category"].tolist() == ["a/two", "b/one"]
    assert exemplars["split"].tolist() == ["train", "test"]
    assert exemplars["drawing_id"].tolist() == [5, 1]  # the bars at 41 and at 6
    pixels = np.frombuffer(exemplars["pixels"].iloc[0], np.uint8).reshape(48, 48)
    assert np.array_equal(pixels, second[2])




def test_embedded_prepare_then_exemplars_writes_a_medoid_per_category(tmp_path,
                                                                       monkeypatch):
    params = tmp_path / "params.yaml"
    params.write_text(f"prepare:\n  source: {ROOT / 'data' / 'embedded'}\n")
    monkeypatch.chdir(tmp_path)
    load_stage("prepare").main(["--params", str(params)])
    load_stage("exemplars").main(["--params", str(params)])
    drawings = load_drawings(tmp_path / "data" / "prepared" / "drawings.parquet")
    exemplars = load_exemplars(tmp_path / "data" / "exemplars" / "exemplars.parquet")
    assert len(exemplars.table) == 136
    assert (exemplars.table["split"] == "test").sum() == 15
    rows = drawings.table.set_index("drawing_id").loc[exemplars.table["drawing_id"]]
    assert rows["category"].tolist() == exemplars.table["category"].tolist()
    assert np.array_equal(drawings.images[exemplars.table["drawing_id"].to_numpy()],
                          exemplars.images)
    grid = tmp_path / "data" / "exemplars" / "test_exemplars.png"
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
