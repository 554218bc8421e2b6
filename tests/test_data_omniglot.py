"""Omniglot preparation: the weak split, the pixels, the archives, bad input."""
from __future__ import annotations

import functools
import http.server
import importlib.util
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from latentsketch.config import PrepareParams
from latentsketch.data import sources
from latentsketch.data.omniglot import area_weights, character_split, downsample
from latentsketch.data.prepare import prepare_drawings
from latentsketch.data.tables import DRAWING_COLUMNS, load_drawings
from latentsketch.errors import InputError
from latentsketch.io import read_json
from latentsketch.runtime import run_stage

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def png(size: int = 105, ink_rows: slice = slice(40, 60)) -> bytes:
    """A black-on-white PNG like Omniglot's, with a horizontal bar of ink."""
    white = np.ones((size, size), dtype=bool)
    white[ink_rows, 20:80] = False
    buffer = io.BytesIO()
    Image.fromarray(white).save(buffer, format="PNG")
    return buffer.getvalue()


def write_archive(path: Path, alphabets: dict[str, int], drawers: int = 2,
                  image: bytes | None = None) -> Path:
    """A small zip with the official layout: <root>/<Alphabet>/characterNN/id_DD.png."""
    root = path.name.removesuffix(".zip")
    with zipfile.ZipFile(path, "w") as archive:
        for alphabet, characters in alphabets.items():
            for c in range(1, characters + 1):
                for d in range(1, drawers + 1):
                    name = f"{root}/{alphabet}/character{c:02d}/{c:04d}_{d:02d}.png"
                    archive.writestr(name, image or png())
    return path


def omniglot(source: Path | str, *archives: str, **knobs) -> pd.DataFrame:
    params = PrepareParams(dataset="omniglot", source=str(source),
                           archives=list(archives), **knobs)
    return prepare_drawings(params, seed=0)


# --- the weak split ------------------------------------------------------------------

def test_weak_split_makes_characters_01_to_03_test_and_the_rest_train():
    splits = [character_split(f"character{n:02d}", 3) for n in range(1, 7)]
    assert splits == ["test", "test", "test", "train", "train", "train"]


def test_split_of_a_folder_not_named_characterNN_is_an_input_error():
    with pytest.raises(InputError, match="expected characterNN"):
        character_split("glyph07", 3)


def test_every_alphabet_gives_its_first_characters_to_test(tmp_path):
    write_archive(tmp_path / "mini.zip", {"Runic": 5, "Greek": 4})
    table = omniglot(tmp_path, "mini.zip", test_characters=2)
    test = sorted(table.loc[table["split"] == "test", "category"].unique())
    assert test == ["Greek/character01", "Greek/character02",
                    "Runic/character01", "Runic/character02"]


# --- pixels --------------------------------------------------------------------------

def test_area_weights_average_each_output_pixel_footprint():
    weights = area_weights(105, 48).double()
    assert torch_allclose(weights.sum(1), 1.0)  # every output pixel is an average
    assert torch_allclose(weights.sum(0), 48 / 105)  # every input pixel counts equally


def torch_allclose(values, expected: float) -> bool:
    return bool(np.allclose(values.numpy(), expected, atol=1e-6))


def test_downsampling_keeps_the_ink_fraction_as_grey_level():
    ink = np.full((1, 105, 105), 0.5, dtype=np.float32)
    assert np.all(downsample(ink) == 128)
    ink[0] = 0
    ink[0, :, 69:] = 1  # output column 31 spans [67.81, 70): 1 of its 2.19 columns
    small = downsample(ink)[0]
    assert np.all(small[:, 32:] == 255) and np.all(small[:, :31] == 0)
    assert np.all(small[:, 31] == round(255 / 2.1875))


def test_prepared_drawings_have_ink_high_on_a_blank_background(tmp_path):
    write_archive(tmp_path / "mini.zip", {"Runic": 1}, drawers=1)
    image = load_table_images(omniglot(tmp_path, "mini.zip"))[0]
    assert image.shape == (48, 48)
    assert image[0, 0] == 0 and image[24, 24] == 255  # bar: rows 40..59 of 105


def load_table_images(table: pd.DataFrame) -> np.ndarray:
    return np.stack([np.frombuffer(cell, np.uint8).reshape(48, 48)
                     for cell in table["pixels"]])


def test_table_has_the_contract_columns_sorted_by_category_then_drawer(tmp_path):
    write_archive(tmp_path / "mini.zip", {"Runic": 2, "Greek": 2}, drawers=3)
    table = omniglot(tmp_path, "mini.zip")
    assert tuple(table.columns) == DRAWING_COLUMNS
    assert list(table["drawing_id"]) == list(range(12))
    assert table["category"].iloc[0] == "Greek/character01"
    assert list(table["drawer"].iloc[:3]) == ["01", "02", "03"]
    assert set(table["alphabet"]) == {"Greek", "Runic"}


def test_an_extracted_folder_reads_like_its_zip(tmp_path):
    write_archive(tmp_path / "mini.zip", {"Runic": 2})
    from_zip = omniglot(tmp_path, "mini.zip")
    with zipfile.ZipFile(tmp_path / "mini.zip") as archive:
        archive.extractall(tmp_path / "extracted")
    from_folder = omniglot(tmp_path / "extracted", "mini.zip")
    pd.testing.assert_frame_equal(from_zip, from_folder)


# --- bad input -----------------------------------------------------------------------

def test_missing_archive_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(InputError, match=r"images_evaluation\.zip: not found.*official"):
        omniglot(tmp_path, "images_evaluation.zip")


def test_corrupt_archive_is_an_input_error(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(InputError, match="broken.zip: not a readable zip"):
        omniglot(tmp_path, "broken.zip")


def test_truncated_archive_is_an_input_error(tmp_path):
    whole = write_archive(tmp_path / "whole.zip", {"Runic": 3}).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cut.zip: not a readable zip"):
        omniglot(tmp_path, "cut.zip")


def test_official_archive_with_missing_drawings_fails_the_count_check(tmp_path):
    write_archive(tmp_path / "images_background_small1.zip", {"Latin": 2})
    with pytest.raises(InputError, match="4 PNGs where the official file has 2720"):
        omniglot(tmp_path, "images_background_small1.zip")


def test_image_of_unexpected_size_names_the_member(tmp_path):
    write_archive(tmp_path / "mini.zip", {"Runic": 1}, image=png(size=64))
    with pytest.raises(InputError, match=r"Runic/character01/0001_01.png: 64×64 pixels"):
        omniglot(tmp_path, "mini.zip")


def test_same_alphabet_in_two_archives_is_an_input_error(tmp_path):
    write_archive(tmp_path / "one.zip", {"Greek": 1, "Latin": 1})
    write_archive(tmp_path / "two.zip", {"Latin": 1})
    with pytest.raises(InputError, match="'Latin' is in both one.zip and two.zip"):
        omniglot(tmp_path, "one.zip", "two.zip")


# --- downloads -----------------------------------------------------------------------

class FlakyServer:
    """A local HTTP server over a folder whose first answer is a 503."""

    def __init__(self, folder: Path):
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.requests == 1:
                    self.send_error(503)
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_download_retries_then_caches_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RETRY_WAIT_S", 0.0)
    host = tmp_path / "host"
    host.mkdir()
    write_archive(host / "mini.zip", {"Runic": 2})
    server = FlakyServer(host)
    try:
        first = omniglot(server.url, "mini.zip", cache=str(tmp_path / "cache"))
        second = omniglot(server.url, "mini.zip", cache=str(tmp_path / "cache"))
    finally:
        server.close()
    assert server.requests == 2  # one 503, one success, then the cache
    assert len(first) == 4
    pd.testing.assert_frame_equal(first, second)


def test_file_absent_from_the_host_is_reported_after_the_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RETRY_WAIT_S", 0.0)
    server = FlakyServer(tmp_path)  # a 503, then 404: absent.zip is not there
    try:
        with pytest.raises(InputError, match="absent.zip: the server answered 404"):
            omniglot(server.url, "absent.zip", cache=str(tmp_path / "cache"))
    finally:
        server.close()


def test_download_gives_up_after_download_retries_tries(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RETRY_WAIT_S", 0.0)
    server = FlakyServer(tmp_path)
    try:
        failed = r"download failed after 1 tries \(HTTP 503\)"
        with pytest.raises(InputError, match=failed):
            omniglot(server.url, "mini.zip", cache=str(tmp_path / "cache"),
                     download_retries=1)
    finally:
        server.close()


# --- the stage -----------------------------------------------------------------------

def write_params(path: Path, prepare: str) -> Path:
    path.write_text(f"seed: 0\nprepare:\n{prepare}")
    return path


def run_prepare(cwd: Path, params: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py"),
                           "--params", str(params)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_misspelled_params_key_exits_2_naming_the_key(tmp_path):
    params = write_params(tmp_path / "p.yaml", "  archivs: [x.zip]\n")
    result = run_prepare(tmp_path, params)
    assert result.returncode == 2
    assert "unknown params key 'archivs' (did you mean 'archives'?)" in result.stderr
    assert not (tmp_path / "data").exists()


def load_stage(name: str):
    """Import stages/<name>.py as a module (stage scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}",
                                                  ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_dataset_exits_2_listing_the_known_ones(tmp_path, monkeypatch, capsys):
    params = write_params(tmp_path / "p.yaml", "  dataset: omniglott\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prepare.py", "--params", str(params)])
    with pytest.raises(SystemExit) as exit_:
        run_stage(load_stage("prepare").main)
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "'omniglott' is not one of ['omniglot', 'quickdraw']" in message


def test_embedded_prepare_writes_the_table_and_its_counts(tmp_path, monkeypatch):
    embedded = ROOT / "data" / "embedded"
    params = write_params(tmp_path / "p.yaml", f"  source: {embedded}\n")
    monkeypatch.chdir(tmp_path)
    load_stage("prepare").main(["--params", str(params)])
    drawings = load_drawings(tmp_path / "data" / "prepared" / "drawings.parquet")
    summary = read_json(tmp_path / "metrics" / "prepare.json")
    # The official small1 archive: 5 alphabets, 136 characters × 20 drawers.
    assert (summary["categories"], summary["drawings"]) == (136, 2720)
    assert summary["test"] == {"categories": 15, "drawings": 300}
    assert summary["train"] == {"categories": 121, "drawings": 2420}
    assert drawings.images.shape == (2720, 48, 48)
    assert drawings.table.groupby("category").size().eq(20).all()


@pytest.mark.shared_data
def test_full_omniglot_has_the_papers_counts():
    folder = SHARED_DATA / "omniglot"
    if not (folder / "images_background.zip").exists():
        pytest.skip(f"full Omniglot not found in {folder}")
    table = omniglot(folder, "images_background.zip", "images_evaluation.zip")
    categories = table.groupby("split")["category"].nunique()
    assert (table["category"].nunique(), len(table)) == (1623, 32460)
    assert (categories["test"], categories["train"]) == (150, 1473)
    assert table.groupby("alphabet")["category"].nunique().size == 50
