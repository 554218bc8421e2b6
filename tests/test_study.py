"""The study stage: normalization, distance to human, parametric fits, best models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from latentsketch import study
from latentsketch.errors import InputError
from latentsketch.io import images_to_column
from test_maps import run_stage_main

ROOT = Path(__file__).resolve().parents[1]


def score(key, model, family, beta, recognizability, originality):
    return {"model": model, "key": key, "family": family, "beta": beta,
            "recognizability": recognizability, "originality": originality,
            "n_samples": 20}


def write_scores(folder: Path, scores: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in scores:
        (folder / f"{entry['key']}.json").write_text(json.dumps(entry))


def stroke_images(count: int, rng: np.random.Generator) -> np.ndarray:
    """Drawings of one random straight stroke each: enough to see a grid."""
    images = np.zeros((count, 48, 48), dtype=np.uint8)
    for image in images:
        (r0, c0), (r1, c1) = rng.integers(6, 42, size=(2, 2))
        for s in np.linspace(0, 1, 60):
            r, c = int(r0 + s * (r1 - r0)), int(c0 + s * (c1 - c0))
            image[r - 1:r + 2, c - 1:c + 2] = 255
    return images


SCORES = [
    score("human", "human", "human", None, 0.80, 2.0),
    score("none", "none", "none", 0.0, 0.60, 1.0),
    score("pixel", "pixel", "pixel", None, 0.65, 1.2),
    score("proto-5", "proto-5", "proto", 5.0, 0.70, 1.4),
    score("proto-50", "proto-50", "proto", 50.0, 0.78, 1.9),  # closest proto
    score("proto-500", "proto-500", "proto", 500.0, 0.72, 1.5),
    score("kl-1e-05", "kl-1e-05", "kl", 1e-5, 0.62, 3.0),  # highest originality
    score("focus", "barlow-30", "barlow", 30.0, 0.75, 1.6),
]


def test_originality_is_min_max_normalized_over_models_and_human():
    table = study.place_models(pd.DataFrame(SCORES))
    norm = dict(zip(table["key"], table["originality_norm"]))
    assert norm["none"] == 0.0 and norm["kl-1e-05"] == 1.0
    assert norm["human"] == pytest.approx((2.0 - 1.0) / (3.0 - 1.0))


def test_distance_to_human_is_euclidean_in_normalized_plane():
    table = study.place_models(pd.DataFrame(SCORES)).set_index("key")
    expected = np.hypot((1.9 - 1.0) / 2.0 - 0.5, 0.78 - 0.80)
    assert table.loc["proto-50", "distance_to_human"] == pytest.approx(expected)
    assert table.loc["human", "distance_to_human"] == 0.0


def test_best_model_per_family_is_the_closest_to_human():
    best = study.best_models(study.place_models(pd.DataFrame(SCORES)))
    assert best == {"barlow": "focus", "kl": "kl-1e-05", "none": "none",
                    "pixel": "pixel", "proto": "proto-50"}


def test_parametric_fit_recovers_a_known_quadratic():
    betas = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    u = (np.log(betas) - np.log(1e-4)) / (np.log(1.0) - np.log(1e-4))
    originality = 0.2 + 0.5 * u - 0.3 * u**2
    recognizability = 0.9 - 0.4 * u + 0.6 * u**2
    fit = study.parametric_fit("kl", betas, originality, recognizability)
    assert np.allclose(fit.originality, [-0.3, 0.5, 0.2])
    assert np.allclose(fit.recognizability, [0.6, -0.4, 0.9])
    curve_beta, curve_originality, _ = fit.curve(points=5)
    assert curve_beta[0] == pytest.approx(1e-4) and curve_beta[-1] == pytest.approx(1.0)
    assert curve_originality[-1] == pytest.approx(0.4)


def test_family_with_fewer_than_three_betas_gets_no_fit():
    assert study.parametric_fit("vq", [1.0, 5.0], [0.1, 0.2], [0.5, 0.6]) is None
    table = study.place_models(pd.DataFrame(SCORES))
    assert set(study.family_fits(table)) == {"proto"}


def test_focus_is_left_out_when_it_duplicates_a_grid_entry():
    class Params:
        grid = ["none", "proto-500"]
        focus = "proto-500.0"

    assert study.study_keys(Params) == ["none", "proto-500", "pixel", "human"]
    Params.focus = "proto-50"
    assert study.study_keys(Params) == ["none", "proto-500", "focus", "pixel", "human"]


def test_missing_human_scores_are_an_input_error(tmp_path):
    write_scores(tmp_path, [s for s in SCORES if s["key"] != "human"])
    with pytest.raises(InputError, match="human.json.*score_human"):
        study.load_scores(tmp_path, ["none", "human"])


def write_synthetic_study(root: Path, scores: list[dict], grid: list[str],
                          regularizer: str, beta: float) -> None:
    """A project folder holding only what the study stage reads."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(grid=grid, regularizer=regularizer, beta=beta)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_scores(root / "metrics" / "scores", scores)
    rng = np.random.default_rng(0)
    categories = [f"Alphabet/character{i:02d}" for i in range(1, 5)]
    exemplars = pd.DataFrame({"category": categories, "split": "test",
                              "drawing_id": range(4),
                              "pixels": images_to_column(stroke_images(4, rng))})
    (root / "data" / "exemplars").mkdir(parents=True)
    exemplars.to_parquet(root / "data" / "exemplars" / "exemplars.parquet")
    for entry in scores:
        if entry["key"] == "human":
            continue
        folder = root / "models" / entry["key"] / "samples"
        folder.mkdir(parents=True)
        samples = pd.DataFrame({
            "category": np.repeat(categories, 3), "exemplar_drawing_id": np.repeat(
                range(4), 3), "sample_index": np.tile(range(3), 4),
            "pixels": images_to_column(stroke_images(12, rng))})
        samples.to_parquet(folder / "samples.parquet")


def test_study_stage_writes_best_models_metrics_and_figures(tmp_path, monkeypatch):
    grid = ["none", "proto-5", "proto-50", "proto-500", "kl-1e-05"]
    write_synthetic_study(tmp_path, SCORES, grid, "barlow", 30)
    monkeypatch.chdir(tmp_path)
    run_stage_main("study.py", [])
    best = json.loads((tmp_path / "study" / "best.json").read_text())
    assert best["proto"] == "proto-50" and best["barlow"] == "focus"
    metrics = json.loads((tmp_path / "metrics" / "study.json").read_text())
    assert metrics["models"]["kl-1e-05"]["originality_norm"] == 1.0
    assert metrics["human"]["recognizability"] == 0.8
    fig2 = pd.read_csv(tmp_path / "plots" / "fig2.csv")
    assert list(fig2.columns[:6]) == ["key", "family", "beta", "originality",
                                      "recognizability", "distance"]
    fits = pd.read_csv(tmp_path / "study" / "fits.csv")
    assert list(fits["family"]) == ["proto"]
    for name in ("fig2.png", "samples.png", "samples_proto.png", "samples_none.png"):
        assert (tmp_path / "study" / name).stat().st_size > 1000


def test_model_under_study_is_listed_as_focus_even_when_it_duplicates_a_grid_entry():
    table = pd.DataFrame([
        {"key": "proto-500", "model": "proto-500", "family": "proto", "beta": 500.0,
         "originality": 3.2, "originality_norm": 0.1, "recognizability": 0.5,
         "distance_to_human": 0.4},
        {"key": "human", "model": "human", "family": "human", "beta": 0.0,
         "originality": 3.4, "originality_norm": 0.3, "recognizability": 0.85,
         "distance_to_human": 0.0}])
    metrics = study.study_metrics(table, focus_model="proto-500")
    assert metrics["models"]["focus"] == metrics["models"]["proto-500"]
    assert "human" not in metrics["models"]
