"""Spearman ρ, one-sided Wilcoxon tests, split-half consistency, the stats stage."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from latentsketch import maps, stats
from test_maps import run_stage_main, write_params

FIRST = np.array([0.61, 0.52, 0.70, 0.45, 0.66, 0.58, 0.73, 0.49, 0.55, 0.68])
SECOND = np.array([0.50, 0.47, 0.62, 0.46, 0.51, 0.49, 0.60, 0.41, 0.57, 0.52])


def test_spearman_matches_scipy_on_flattened_maps():
    rng = np.random.default_rng(0)
    a, b = rng.random((48, 48)), rng.random((48, 48))
    b += a  # correlated
    expected = scipy_stats.spearmanr(a.ravel(), b.ravel()).statistic
    assert stats.spearman(a, b) == pytest.approx(expected)
    assert 0.5 < stats.spearman(a, b) < 1.0


def test_spearman_of_a_monotone_transform_is_one_and_of_a_constant_is_nan():
    a = np.arange(2304, dtype=float).reshape(48, 48)
    assert stats.spearman(a, np.exp(a / 500)) == pytest.approx(1.0)
    assert math.isnan(stats.spearman(a, np.ones((48, 48))))


def test_wilcoxon_is_one_sided_first_greater_and_matches_scipy():
    statistic, p_greater = stats.wilcoxon_greater(FIRST, SECOND)
    expected = scipy_stats.wilcoxon(FIRST, SECOND, alternative="greater")
    assert statistic == pytest.approx(expected.statistic)
    assert p_greater == pytest.approx(expected.pvalue)
    assert p_greater < 0.01  # FIRST is clearly higher
    _, p_reversed = stats.wilcoxon_greater(SECOND, FIRST)
    assert p_reversed > 0.99  # the other direction is not supported at all


def test_wilcoxon_of_identical_samples_is_undefined():
    assert all(math.isnan(v) for v in stats.wilcoxon_greater(FIRST, FIRST))


def spearman_rows() -> pd.DataFrame:
    rows = []
    for family, values in (("proto", FIRST), ("none", SECOND), ("kl", SECOND - 0.05)):
        rows += [{"model": family, "family": family, "category": f"c{i}", "spearman": v}
                 for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_summary_orders_models_by_mean_rho_with_sample_std():
    summary = stats.summarize(spearman_rows())
    assert list(summary["family"]) == ["proto", "none", "kl"]
    assert summary["mean"][0] == pytest.approx(FIRST.mean())
    assert summary["std"][0] == pytest.approx(FIRST.std(ddof=1))


def test_wilcoxon_matrix_holds_row_greater_than_column_p_values():
    matrix = stats.wilcoxon_matrix(spearman_rows(), ["proto", "none", "kl"])
    assert matrix.loc["proto", "none"] == pytest.approx(
        scipy_stats.wilcoxon(FIRST, SECOND, alternative="greater").pvalue)
    assert matrix.loc["none", "proto"] > 0.99
    assert math.isnan(matrix.loc["kl", "kl"])
    table = stats.wilcoxon_markdown(matrix)
    assert "| first > second | none | kl |" in table
    assert table.splitlines()[-1].startswith("| none |  | ")  # upper triangle only


def test_split_half_consistency_is_high_for_agreeing_participants():
    rng = np.random.default_rng(0)
    shared = rng.random((48, 48))
    agreeing = {c: shared + 0.1 * rng.random((6, 48, 48)) for c in ("a", "b")}
    random = {c: rng.random((6, 48, 48)) for c in ("a", "b")}
    high = stats.split_half_consistency(agreeing, 20, np.random.default_rng(1))
    low = stats.split_half_consistency(random, 20, np.random.default_rng(1))
    assert high.shape == (20,) and high.mean() > 0.9
    assert abs(low.mean()) < 0.1


def write_maps_folder(root, participants: bool) -> None:
    """maps/ as the importance stage writes it: two models, a reference, 8 categories."""
    rng = np.random.default_rng(0)
    categories = [f"A/character{i:02d}" for i in range(8)]
    truth = {c: rng.random((48, 48)) for c in categories}
    rows = []
    for family, noise in (("proto", 0.3), ("none", 3.0)):
        key = "proto-500" if family == "proto" else "none"
        rows += [{"model": key, "family": family, "category": c,
                  "map": (truth[c] + noise * rng.random((48, 48))).ravel().astype(np.float32)}
                 for c in categories]
    people = ["p1", "p2", "p3", "p4"] if participants else [None]
    reference = pd.DataFrame(
        [{"category": c, "participant": p,
          "map": (truth[c] + 0.2 * rng.random((48, 48))).ravel().astype(np.float32),
          "source": maps.HUMAN_REFERENCE if participants else maps.PROXY_REFERENCE}
         for c in categories for p in people])
    (root / "maps").mkdir()
    pd.DataFrame(rows).to_parquet(root / "maps" / "maps.parquet")
    reference.to_parquet(root / "maps" / "reference.parquet")


def test_stats_stage_writes_table_figure_and_metrics(tmp_path, monkeypatch):
    write_maps_folder(tmp_path, participants=True)
    write_params(tmp_path, stats=dict(bootstrap=25))
    monkeypatch.chdir(tmp_path)
    run_stage_main("stats.py", [])

    metrics = json.loads((tmp_path / "metrics" / "stats.json").read_text())
    assert metrics["reference"] == "human"
    assert metrics["models"]["proto"]["spearman_mean"] > metrics["models"]["none"][
        "spearman_mean"]
    assert metrics["wilcoxon_p"]["proto"]["none"] < 0.01  # 8 of 8 categories higher
    assert metrics["human_consistency"]["draws"] == 25
    assert metrics["human_consistency"]["mean"] > 0.5
    wilcoxon = pd.read_csv(tmp_path / "stats" / "wilcoxon.csv")
    assert list(wilcoxon.columns) == ["first > second", "proto", "none"]
    spearman = pd.read_parquet(tmp_path / "stats" / "spearman.parquet")
    assert len(spearman) == 16
    assert "Reference maps: human." in (tmp_path / "stats" / "wilcoxon.md").read_text()
    assert (tmp_path / "stats" / "fig4b.png").stat().st_size > 1000


def test_stats_with_the_proxy_say_so_and_skip_human_consistency(tmp_path, monkeypatch):
    write_maps_folder(tmp_path, participants=False)
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    run_stage_main("stats.py", [])
    metrics = json.loads((tmp_path / "metrics" / "stats.json").read_text())
    assert metrics["reference"] == "proxy (ink frequency)"
    assert "human_consistency" not in metrics
