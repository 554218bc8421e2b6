"""Where every artifact of the pipeline lives, relative to the project root."""
from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared/drawings.parquet")
PREPARE_SUMMARY = Path("metrics/prepare.json")
EXEMPLARS_DIR = Path("data/exemplars")
EXEMPLARS = EXEMPLARS_DIR / "exemplars.parquet"
EXEMPLAR_GRID = EXEMPLARS_DIR / "test_exemplars.png"
CRITICS_DIR = Path("models/critics")
MODELS = Path("models")
LOGS = Path("logs")
SCORE_METRICS = Path("metrics/scores")
STUDY_DIR = Path("study")
STUDY_METRICS = Path("metrics/study.json")
FIG2_PLOT = Path("plots/fig2.csv")
MAPS_DIR = Path("maps")
STATS_DIR = Path("stats")
STATS_METRICS = Path("metrics/stats.json")
CHECKPOINTS = Path("checkpoints")


def rae_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "rae"


def latents_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "latents"


def ldm_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "ldm"


def samples_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "samples"


def scores_dir(model_dir: Path) -> Path:
    return Path(model_dir) / "scores"


def log_csv(stage: str, key: str) -> Path:
    """Per-epoch loss log declared as DVC plots: logs/<stage>/<key>.csv."""
    return LOGS / stage / f"{key}.csv"


def checkpoint(stage: str, key: str) -> Path:
    """Training checkpoint, outside DVC's outputs so a killed run can resume."""
    return CHECKPOINTS / stage / f"{key}.pt"
