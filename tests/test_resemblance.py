"""Samples of a trained LDM resemble their own exemplar's category (real data, small scale).

Trains the unregularized chain (RAE → encode → LDM → sample) with the default params on
the embedded Omniglot subset, 5 samples per test exemplar, and checks that a sample is
on average closer in pixels to its own exemplar than to the other test exemplars.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from latentsketch.data.tables import load_exemplars
from latentsketch.io import column_to_images, read_parquet

ROOT = Path(__file__).resolve().parents[1]
STAGES = (["prepare.py"], ["exemplars.py"], ["train_rae.py", "none"], ["encode.py", "none"],
          ["train_ldm.py", "none"], ["sample.py", "none"])


@pytest.fixture(scope="module")
def samples_and_exemplars(tmp_path_factory):
    project = tmp_path_factory.mktemp("resemblance")
    (project / "data").mkdir()
    os.symlink(ROOT / "data" / "embedded", project / "data" / "embedded")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sample"]["per_exemplar"] = 5
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for stage, *args in STAGES:
        done = subprocess.run([sys.executable, str(ROOT / "stages" / stage), *args],
                              cwd=project, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    samples = read_parquet(project / "models/none/samples/samples.parquet")
    exemplars = load_exemplars(project / "data/exemplars/exemplars.parquet").split("test")
    return samples, exemplars


@pytest.mark.slow
def test_samples_are_closer_to_their_own_exemplar_than_to_the_others(samples_and_exemplars):
    samples, exemplars = samples_and_exemplars
    pixels = column_to_images(samples["pixels"]).reshape(len(samples), -1) / 255.0
    targets = exemplars.images.reshape(len(exemplars.images), -1) / 255.0
    distances = np.linalg.norm(pixels[:, None, :] - targets[None, :, :], axis=2)
    own = exemplars.table["category"].tolist()
    own_index = np.array([own.index(category) for category in samples["category"]])
    to_own = distances[np.arange(len(samples)), own_index]
    others = (distances.sum(1) - to_own) / (len(targets) - 1)
    assert to_own.mean() < others.mean()
    assert (to_own < others).mean() > 0.8  # chance would be about one half
