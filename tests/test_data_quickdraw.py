"""QuickDraw-FS builder: rendering, readers, clustering, the category split."""
from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from latentsketch.config import PrepareParams, QuickDrawParams, load_params
from latentsketch.data.clusters import Cluster, cluster_category, kmeans
from latentsketch.data.prepare import prepare_drawings
from latentsketch.data.quickdraw import (Group, SourceDrawings, most_cohesive,
                                         read_numpy_bitmap, split_categories)
from latentsketch.data.strokes import render
from latentsketch.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def stroke(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64).T


# --- rendering -----------------------------------------------------------------------

def test_horizontal_stroke_lights_the_two_middle_rows():
    image = render([stroke((0, 0), (10, 0))], line_width=2.0, margin=2.0)
    inked_rows = np.flatnonzero(image.any(axis=1))
    inked_columns = np.flatnonzero(image.any(axis=0))
    assert list(inked_rows) == [23, 24]  # 2 px wide, centred on y = 24
    # The stroke's centre line spans 48 - 2·margin - line_width = 42 px, and its
    # round caps add one pixel each side: columns 2..45.
    assert (inked_columns[0], inked_columns[-1]) == (2, 45)
    assert np.all(image[23:25, 3:45] == 255)


def test_rendering_keeps_the_aspect_ratio_and_centres_the_drawing():
    box = stroke((0, 0), (20, 0), (20, 10), (0, 10), (0, 0))  # twice as wide as tall
    image = render([box], line_width=1.0, margin=2.0)
    rows, columns = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    # Centre lines: x from 2.5 to 45.5 (43 px), y from 13.25 to 34.75 (21.5 px);
    # antialiased ink reaches up to one pixel beyond them.
    assert (columns[0], columns[-1]) == (2, 45)
    assert (rows[0], rows[-1]) == (12, 35)
    assert image[24, 2] == 255 and image[24, 45] == 255  # the vertical sides, full
    assert image[13, 24] == image[34, 24] == round(0.75 * 255)  # the horizontal ones


def test_rendering_ignores_the_drawings_scale_and_offset():
    small = [stroke((0, 0), (30, 40)), stroke((30, 0), (0, 40))]
    canvas = [s * 7.5 + np.array([[300.0], [120.0]]) for s in small]
    assert np.array_equal(render(small), render(canvas))


# --- readers -------------------------------------------------------------------------

def ndjson_line(strokes: list, key: str, recognized: bool = True) -> str:
    return json.dumps({"word": "cup", "countrycode": "FR", "recognized": recognized,
                       "key_id": key, "drawing": strokes})


def quickdraw(source: Path, **knobs) -> pd.DataFrame:
    params = PrepareParams(dataset="quickdraw", source=str(source),
                           quickdraw=QuickDrawParams(**knobs))
    return prepare_drawings(params, seed=0)


def two_shape_category(folder: Path, fmt: str = "raw", per_shape: int = 6) -> None:
    """A category file of horizontal bars and vertical bars, jittered, interleaved."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(per_shape):
        jitter = rng.uniform(-1, 1, 4).round(2).tolist()
        bar = [[0, 100 + jitter[0]], [0 + jitter[1], 1 + jitter[1]]]
        box = [[0, 30, 30, 0, 0], [0, 0, 100 + jitter[2], 100, jitter[3]]]
        if fmt == "raw":  # raw strokes carry times too
            bar, box = bar + [[0, 1]], box + [[0, 1, 2, 3, 4]]
        lines += [ndjson_line([bar], f"{1000 + i}"), ndjson_line([box], f"{2000 + i}")]
    (folder / fmt).mkdir(parents=True, exist_ok=True)
    (folder / fmt / "cup.ndjson").write_text("\n".join(lines) + "\n")


def test_ndjson_build_makes_one_category_per_visual_concept(tmp_path):
    two_shape_category(tmp_path, "raw")
    table = quickdraw(tmp_path, format="raw", clusters_per_category=2, n_per_class=6)
    assert sorted(table["category"].unique()) == ["cup/c00", "cup/c01"]
    shapes = table.groupby("category")["drawer"].agg(lambda d: {k[0] for k in d})
    assert sorted(map(sorted, shapes)) == [["1"], ["2"]]  # bars apart from boxes
    assert set(table["alphabet"]) == {"cup"} and set(table["dataset"]) == {"quickdraw-fs"}


def test_simplified_files_read_like_raw_ones(tmp_path):
    two_shape_category(tmp_path, "raw")
    two_shape_category(tmp_path, "simplified")
    knobs = {"clusters_per_category": 2, "n_per_class": 6}
    raw = quickdraw(tmp_path, format="raw", **knobs)
    simplified = quickdraw(tmp_path, format="simplified", **knobs)
    pd.testing.assert_frame_equal(raw, simplified)


def test_unrecognized_drawings_are_skipped_unless_asked_for(tmp_path):
    (tmp_path / "raw").mkdir()
    lines = [ndjson_line([[[0, 9], [0, 9]]], str(k), recognized=k % 2 == 0)
             for k in range(10)]
    (tmp_path / "raw" / "cup.ndjson").write_text("\n".join(lines))
    recognized = quickdraw(tmp_path, format="raw", clusters_per_category=1, n_per_class=5)
    assert sorted(recognized["drawer"]) == ["0", "2", "4", "6", "8"]
    every = quickdraw(tmp_path, format="raw", clusters_per_category=1, n_per_class=10,
                      recognized_only=False)
    assert len(every) == 10


def test_remote_ndjson_fetches_only_the_lines_it_needs(tmp_path):
    two_shape_category(tmp_path / "host", "raw")
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "host"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        params = PrepareParams(
            dataset="quickdraw", source=f"http://127.0.0.1:{server.server_address[1]}",
            cache=str(tmp_path / "cache"),
            quickdraw=QuickDrawParams(format="raw", categories=["cup"],
                                      max_drawings_per_category=4, recognized_only=False,
                                      clusters_per_category=1, n_per_class=4))
        table = prepare_drawings(params, seed=0)
    finally:
        server.shutdown()
        server.server_close()
    cached = list((tmp_path / "cache").rglob("*.ndjson"))
    assert [p.name for p in cached] == ["cup.first4.ndjson"]
    assert len(cached[0].read_text().splitlines()) == 4 and len(table) == 4


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_numpy_bitmap_is_upsampled_to_48_pixels(tmp_path):
    bitmaps = np.zeros((2, 28, 28), dtype=np.uint8)
    bitmaps[0] = 255
    bitmaps[1, 7:21, 7:21] = 255  # the central half of the image
    np.save(tmp_path / "cup.npy", bitmaps.reshape(2, 784))
    drawings = read_numpy_bitmap(tmp_path / "cup.npy", limit=10)
    assert drawings.images.shape == (2, 48, 48)
    assert np.all(drawings.images[0] == 255)
    assert drawings.images[1, 24, 24] == 255 and drawings.images[1, 2, 2] == 0
    assert list(drawings.drawers) == ["row0000000", "row0000001"]


def test_truncated_ndjson_line_names_the_file_and_line(tmp_path):
    two_shape_category(tmp_path, "raw")
    path = tmp_path / "raw" / "cup.ndjson"
    path.write_text(path.read_text()[:-40])  # cut inside the last line
    with pytest.raises(InputError, match=r"cup.ndjson, line 12: not valid JSON"):
        quickdraw(tmp_path, format="raw", clusters_per_category=2, n_per_class=6)


def test_empty_category_file_is_an_input_error(tmp_path):
    (tmp_path / "numpy_bitmap").mkdir()
    np.save(tmp_path / "numpy_bitmap" / "cup.npy", np.zeros((0, 784), dtype=np.uint8))
    with pytest.raises(InputError, match="category 'cup'.*no usable drawings"):
        quickdraw(tmp_path, format="numpy_bitmap")


def test_bitmap_of_unexpected_size_is_an_input_error(tmp_path):
    (tmp_path / "numpy_bitmap").mkdir()
    np.save(tmp_path / "numpy_bitmap" / "cup.npy", np.zeros((5, 32 * 32), dtype=np.uint8))
    with pytest.raises(InputError, match=r"shape \(5, 1024\).*N×784 uint8"):
        quickdraw(tmp_path, format="numpy_bitmap")


def test_missing_category_file_names_the_category(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match=r"category 'teapot' .*teapot.ndjson: not found"):
        quickdraw(tmp_path, format="raw", categories=["teapot"])


def test_no_cluster_large_enough_is_an_input_error(tmp_path):
    two_shape_category(tmp_path, "raw")
    with pytest.raises(InputError, match="no cluster reached n_per_class = 50"):
        quickdraw(tmp_path, format="raw", n_per_class=50)


# --- clustering and the split --------------------------------------------------------

def blobs(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    noise = torch.randn(90, 2, generator=gen, dtype=torch.float64)
    return centres.repeat_interleave(30, 0) + noise


def test_kmeans_separates_well_apart_blobs():
    labels, _ = kmeans(blobs(0), 3, torch.Generator().manual_seed(1))
    groups = labels.view(3, 30)
    assert all(len(set(row.tolist())) == 1 for row in groups)
    assert len(set(groups[:, 0].tolist())) == 3


def test_same_seed_gives_the_same_clusters():
    images = (np.random.default_rng(3).random((120, 48, 48)) ** 8 * 255).astype(np.uint8)

    def clusters(seed: int) -> list[tuple[int, list[int]]]:
        found = cluster_category(images, clusters=4, n_per_class=10, min_cohesion=0.0,
                                 sigma=2.0, generator=torch.Generator().manual_seed(seed))
        return [(c.rank, c.members.tolist()) for c in found]

    assert clusters(7) == clusters(7)
    assert clusters(7) != clusters(8)


def test_kept_members_are_the_most_central_first():
    # Drawings blend from a left block (t = 0) to a mirrored right block (t = 1),
    # so the cluster's centre is the t = 0.5 blend and centrality falls with |t - 0.5|.
    left = np.zeros((48, 48))
    left[16:32, 4:20] = 255
    blends = np.linspace(0, 1, 11)
    images = np.stack([(1 - t) * left + t * left[:, ::-1] for t in blends])
    images = images.astype(np.uint8)
    found = cluster_category(images, clusters=1, n_per_class=3, min_cohesion=0.0,
                             sigma=2.0, generator=torch.Generator().manual_seed(0))
    assert len(found) == 1 and found[0].size == 11
    assert found[0].members[0] == 5 and sorted(found[0].members) == [4, 5, 6]


def test_split_uses_the_papers_ratio_and_depends_only_on_the_seed():
    names = [f"thing{i:03d}/c00" for i in range(665)]
    split = split_categories(names, 115 / 665, seed=0)
    assert sum(s == "test" for s in split.values()) == 115
    assert split == split_categories(list(reversed(names)), 115 / 665, seed=0)
    assert split != split_categories(names, 115 / 665, seed=1)


def test_max_categories_keeps_every_source_before_any_second_cluster():
    def group(source: str, rank: int, cohesion: float) -> Group:
        cluster = Cluster(rank, 10, np.arange(2), cohesion)
        return Group(source, cluster, SourceDrawings(np.zeros((2, 48, 48), np.uint8),
                                                     np.array(["a", "b"], dtype=object)))

    groups = [group("cat", 0, 0.99), group("cat", 1, 0.98), group("dog", 0, 0.50),
              group("dog", 1, 0.40), group("eye", 0, 0.60)]
    kept = most_cohesive(groups, 4)
    assert [g.name for g in kept] == ["cat/c00", "cat/c01", "dog/c00", "eye/c00"]


@pytest.mark.shared_data
def test_local_numpy_bitmap_params_build_at_least_60_categories_of_200():
    if not (SHARED_DATA / "quickdraw" / "numpy_bitmap").is_dir():
        pytest.skip(f"Quick, Draw! numpy_bitmap files not found in {SHARED_DATA}")
    params = load_params(ROOT / "params" / "quickdraw-local.yaml").prepare
    params = dataclasses.replace(params, source=str(SHARED_DATA / "quickdraw"))
    table = prepare_drawings(params, seed=0)
    sizes = table.groupby("category").size()
    assert len(sizes) >= 60 and sizes.min() >= 200
    test = table.groupby("split")["category"].nunique()["test"]
    assert test == round(len(sizes) * 115 / 665)
