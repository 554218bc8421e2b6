"""Score one model's samples (or the pixel baseline, or the human drawings).

    python stages/score.py <model> [--dir models/<model>] [--params params.yaml]
    python stages/score.py pixel
    python stages/score.py human

Reads the critics (models/critics), the test exemplars (data/exemplars) and
either the samples (models/<key>/samples/samples.parquet) or, for `human`, the
human test drawings (data/prepared/drawings.parquet) less the exemplars.
Writes models/<key>/scores/per_category.parquet (category, recognizability,
originality, n_samples) and metrics/scores/<key>.json, the figures that
`dvc metrics diff` compares between runs.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from latentsketch import paths
from latentsketch.critics import weights_path
from latentsketch.critics.networks import load_critic
from latentsketch.data.tables import Drawings, load_drawings, load_exemplars
from latentsketch.errors import InputError
from latentsketch.grid import HUMAN
from latentsketch.io import column_to_images, images_to_tensor, read_parquet
from latentsketch.io import write_json, write_parquet
from latentsketch.runtime import run_stage, setup
from latentsketch.scores import score_drawings
from latentsketch.stage import ModelStage, parse_model_stage

log = logging.getLogger("latentsketch")

SAMPLE_COLUMNS = ("category", "exemplar_drawing_id", "sample_index", "pixels")


def human_drawings(exemplars: Drawings) -> tuple[np.ndarray, pd.Series]:
    """The human test drawings of the exemplars' categories, exemplars left out."""
    drawings = load_drawings().split("test")
    keep = (drawings.table["category"].isin(exemplars.table["category"])
            & ~drawings.table["drawing_id"].isin(exemplars.table["drawing_id"]))
    kept = drawings.subset(keep.to_numpy())
    return kept.images, kept.table["category"]


def model_samples(stage: ModelStage, exemplars: Drawings) -> tuple[np.ndarray, pd.Series]:
    """A model's samples, checked against the current test exemplars."""
    path = paths.samples_dir(stage.dir) / "samples.parquet"
    table = read_parquet(path, "samples")
    missing = [c for c in SAMPLE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"samples {path}: missing columns {missing}; rerun "
                         f"`dvc repro sample@{stage.key}`.")
    expected = dict(zip(exemplars.table["category"], exemplars.table["drawing_id"]))
    stale = table["exemplar_drawing_id"].to_numpy() != table["category"].map(expected)
    uncovered = sorted(set(expected) - set(table["category"]))
    if stale.any() or uncovered:
        raise InputError(f"samples {path}: they do not match the test exemplars of "
                         f"data/exemplars ({int(stale.sum())} samples of other "
                         f"exemplars, {len(uncovered)} test categories without samples); "
                         "rerun the model's sample stage (`dvc repro`).")
    table = table.sort_values(["category", "exemplar_drawing_id", "sample_index"],
                              kind="stable")
    return column_to_images(table["pixels"]), table["category"]


def summary(stage: ModelStage, per_category: pd.DataFrame, ways: int) -> dict:
    """metrics/scores/<key>.json: the model's point in the study's plane."""
    spec = stage.spec
    return {"model": spec.name if spec else stage.model, "key": stage.key,
            "family": spec.family if spec else stage.model,
            "beta": spec.beta if spec else 0.0,
            "recognizability": float(per_category["recognizability"].mean()),
            "originality": float(per_category["originality"].mean()),
            "n_samples": int(per_category["n_samples"].sum()), "ways": ways}


def main(argv: list[str] | None) -> None:
    stage = parse_model_stage(argv, "Score a model's samples: originality and "
                              "recognizability (or `pixel`, or `human`).")
    params = stage.params
    runtime = setup(params, f"score {stage.key}")
    exemplars = load_exemplars().split("test")
    categories = list(exemplars.table["category"])
    images, drawn = (human_drawings(exemplars) if stage.model == HUMAN
                     else model_samples(stage, exemplars))
    ways = min(params.score.ways, len(categories))
    if ways < params.score.ways:
        log.info("score %s: %d test categories only: %d-way tasks instead of %d-way",
                 stage.key, len(categories), ways, params.score.ways)

    device = runtime.device
    recognizer = load_critic(weights_path("recognizability"), device)
    encoder = load_critic(weights_path("originality"), device)
    labels = torch.tensor(drawn.map({c: i for i, c in enumerate(categories)}).to_numpy(),
                          dtype=torch.long)
    per_category = score_drawings(
        recognizer=recognizer, originality_features=encoder.features,
        exemplars=images_to_tensor(exemplars.images, device), categories=categories,
        drawings=images_to_tensor(images, device), labels=labels, ways=ways,
        tasks_per_category=params.score.tasks_per_category, seed=params.seed,
        threshold=params.critics.binarize_threshold)

    result = summary(stage, per_category, ways)
    write_parquet(paths.scores_dir(stage.dir) / "per_category.parquet", per_category)
    write_json(paths.SCORE_METRICS / f"{stage.key}.json", result)
    log.info("score %s: recognizability %.3f, originality %.3f over %d drawings",
             stage.key, result["recognizability"], result["originality"],
             result["n_samples"])


if __name__ == "__main__":
    run_stage(main)
