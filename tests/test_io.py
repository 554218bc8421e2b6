"""Artifacts are written atomically and read back exactly."""
import numpy as np
import pandas as pd
import pytest
import torch

from latentsketch import io
from latentsketch.errors import InputError


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with io.atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"


def test_images_round_trip_through_a_parquet_column(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    io.write_parquet(tmp_path / "t.parquet", pd.DataFrame({"pixels": io.images_to_column(images)}))
    back = io.column_to_images(io.read_parquet(tmp_path / "t.parquet")["pixels"])
    np.testing.assert_array_equal(back, images)


def test_image_tensor_conversion_keeps_ink_high_in_unit_range():
    images = np.zeros((2, 48, 48), dtype=np.uint8)
    images[0, 10, 10] = 255
    tensor = io.images_to_tensor(images)
    assert tensor.shape == (2, 1, 48, 48) and tensor.max() == 1.0 and tensor.min() == 0.0
    np.testing.assert_array_equal(io.tensor_to_images(tensor), images)


def test_wrongly_sized_images_are_refused():
    with pytest.raises(ValueError, match="48"):
        io.images_to_column(np.zeros((2, 28, 28), dtype=np.uint8))


def test_weights_round_trip_with_their_config(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    io.save_weights(tmp_path / "m.safetensors", state, {"latent_dim": 64, "betas": {"kl": 1.0}})
    loaded, config = io.load_weights(tmp_path / "m.safetensors")
    torch.testing.assert_close(loaded["w"], state["w"])
    assert config == {"latent_dim": 64, "betas": {"kl": 1.0}}


def test_missing_weights_say_how_to_fix(tmp_path):
    with pytest.raises(InputError, match="dvc repro"):
        io.load_weights(tmp_path / "missing.safetensors")


def test_written_artifacts_are_readable_by_others(tmp_path):
    io.write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").stat().st_mode & 0o044 == 0o044
