"""The DVC pipeline end to end on tiny settings, and what a one-entry change re-runs.

This is the slowest test of the suite (a few minutes on 2 cores): it runs every stage
of dvc.yaml once on the embedded data with tiny sizes, then changes one β of the grid
and checks that only that entry's chain and the aggregating stages run again.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AGGREGATING = {"study", "importance", "stats"}
CHAIN = ("train_rae", "encode", "train_ldm", "sample", "score")

TINY = {
    "regularizer": "classif", "beta": 1, "grid": ["kl-1e-05"],
    "critics": {"proto_episodes": 2, "proto_episodes_per_epoch": 2, "proto_ways": 5,
                "simclr_epochs": 1},
    "rae": {"epochs": 1},
    "ldm": {"epochs": 1, "widths": [64, 32]},
    "pixel": {"epochs": 1, "channels": [8, 16]},
    "sample": {"per_exemplar": 2, "sampler": "ddim", "ddim_steps": 5, "pixel_ddim_steps": 3},
    "score": {"tasks_per_category": 2},
    "importance": {"categories": 2, "variations": 2, "steps": 3},
    "stats": {"bootstrap": 10},
}


def tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in TINY.items():
        if isinstance(value, dict):
            params[key].update(value)
        else:
            params[key] = value
    return params


def dvc(project: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("study")
    for name in ("dvc.yaml", "stages", "src", "data/embedded"):
        source, target = ROOT / name, project / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    dvc(project, "init", "--no-scm", "-q")
    return project


@pytest.mark.slow
def test_every_stage_runs_and_every_model_has_metrics(project):
    output = dvc(project, "repro")
    ran = stages_run(output)
    expected = {f"{stage}@kl-1e-05" for stage in CHAIN}
    expected |= {f"{stage}_focus" for stage in CHAIN} | AGGREGATING
    assert expected <= ran
    for key in ("kl-1e-05", "focus", "pixel", "human"):
        assert (project / "metrics" / "scores" / f"{key}.json").exists()
    for artifact in ("study/fig2.png", "maps/maps.parquet", "stats/wilcoxon.md"):
        assert (project / artifact).exists()


@pytest.mark.slow
def test_changing_one_beta_reruns_only_that_entry_and_the_aggregation(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["grid"] = ["kl-0.001"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    ran = stages_run(dvc(project, "repro"))
    chain = {f"{stage}@kl-0.001" for stage in CHAIN}
    assert chain <= ran
    assert ran <= chain | AGGREGATING
    assert "study" in ran
