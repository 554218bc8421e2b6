"""Stage stats: Spearman ρ of each model's maps with the reference, Wilcoxon tests.

Reads maps/maps.parquet and maps/reference.parquet (stage importance). Writes
stats/spearman.parquet (model, family, category, spearman), stats/summary.csv,
stats/wilcoxon.csv and stats/wilcoxon.md (table A.8.4), stats/fig4b.png and
metrics/stats.json. With participant-level human maps it also measures the
human split-half consistency (A.8.3) over stats.bootstrap random splits.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from latentsketch import maps, paths, stats
from latentsketch.errors import InputError
from latentsketch.grid import NONE
from latentsketch.io import (atomic_path, read_parquet, save_figure, write_csv, write_json,
                             write_parquet)
from latentsketch.plots import family_label, significance_stars, spearman_bars
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None) -> None:
    params = parse_plain_stage(argv, __doc__)
    setup(params, "stats")
    model_maps = read_parquet(paths.MAPS_DIR / "maps.parquet", "importance maps")
    reference = read_parquet(paths.MAPS_DIR / "reference.parquet", "reference maps")
    if model_maps.empty:
        raise InputError(f"importance maps {paths.MAPS_DIR / 'maps.parquet'}: no maps; "
                         "rerun the importance stage (`dvc repro importance`).")
    source = str(reference["source"].iloc[0])
    model_maps = model_maps.assign(map=list(maps.column_to_maps(model_maps["map"])))
    reference = reference.assign(map=list(maps.column_to_maps(reference["map"])))

    table = stats.spearman_table(model_maps, maps.average_reference(reference))
    summary = stats.summarize(table)
    order = list(summary["family"])
    matrix = stats.wilcoxon_matrix(table, order)
    consistency = human_consistency(reference, source, params)
    for row in summary.itertuples():
        log.info("stats: %s (%s) ρ %.3f ± %.3f over %d categories", row.family, row.model,
                 row.mean, row.std, row.n_categories)

    write_parquet(paths.STATS_DIR / "spearman.parquet", table)
    write_csv(paths.STATS_DIR / "summary.csv", summary)
    write_csv(paths.STATS_DIR / "wilcoxon.csv", matrix.reset_index())
    with atomic_path(paths.STATS_DIR / "wilcoxon.md") as tmp:
        tmp.write_text(f"Reference maps: {source}.\n\n" + stats.wilcoxon_markdown(matrix))
    save_figure(paths.STATS_DIR / "fig4b.png", fig4b(summary, matrix, source, consistency))
    write_json(paths.STATS_METRICS, metrics(summary, matrix, source, consistency))


def human_consistency(reference: pd.DataFrame, source: str, params) -> np.ndarray | None:
    """Split-half consistency draws, when the reference has per-participant maps."""
    if source != maps.HUMAN_REFERENCE or reference["participant"].isna().all():
        log.info("stats: no participant-level human maps; no human consistency")
        return None
    per_category = {c: np.stack(rows["map"].to_list())
                    for c, rows in reference.groupby("category") if len(rows) >= 2}
    if not per_category:
        log.info("stats: fewer than two participants per category; no human consistency")
        return None
    draws = stats.split_half_consistency(per_category, params.stats.bootstrap,
                                         np.random.default_rng(params.seed))
    log.info("stats: human split-half consistency %.3f ± %.3f (%d draws, %d categories)",
             np.mean(draws), np.std(draws), len(draws), len(per_category))
    return draws


def fig4b(summary: pd.DataFrame, matrix: pd.DataFrame, source: str,
          consistency: np.ndarray | None):
    """Bars for the regularized models; no-regularization as a line, stars vs it."""
    bars = summary[summary["family"] != NONE].copy()
    has_none = NONE in set(summary["family"])
    bars["label"] = [family_label(f) for f in bars["family"]]
    bars["stars"] = [significance_stars(matrix.loc[f, NONE]) if has_none else ""
                     for f in bars["family"]]
    baseline = float(summary.loc[summary["family"] == NONE, "mean"].iloc[0]) \
        if has_none else None
    return spearman_bars(bars, source, baseline,
                         float(np.mean(consistency)) if consistency is not None else None)


def metrics(summary: pd.DataFrame, matrix: pd.DataFrame, source: str,
            consistency: np.ndarray | None) -> dict:
    """metrics/stats.json: ρ per family, the Wilcoxon p-values, the consistency."""
    def number(value) -> float | None:
        return float(value) if np.isfinite(value) else None

    result = {"reference": source,
              "models": {row.family: {"model": row.model, "spearman_mean": number(row.mean),
                                      "spearman_std": number(row.std),
                                      "n_categories": int(row.n_categories)}
                         for row in summary.itertuples()},
              "wilcoxon_p": {first: {second: number(matrix.loc[first, second])
                                     for second in matrix.columns if second != first}
                             for first in matrix.index}}
    if consistency is not None:
        result["human_consistency"] = {"mean": float(np.mean(consistency)),
                                       "std": float(np.std(consistency)),
                                       "draws": len(consistency)}
    return result


if __name__ == "__main__":
    run_stage(main)
