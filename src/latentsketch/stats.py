"""How well each model's importance maps agree with the reference maps (SPEC §6).

Per category, Spearman's ρ between a model's map and the reference map (both
flattened); per model its mean and standard deviation over categories; for
every ordered pair of models a one-sided Wilcoxon signed-rank test on the
paired per-category ρ (alternative: the first model's ρ is greater), laid out
as the paper's table A.8.4; and, with participant-level human maps, the human
split-half consistency of A.8.3.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's ρ of two maps, flattened; NaN when one of them is constant."""
    first, second = np.ravel(first), np.ravel(second)
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return math.nan
    return float(scipy_stats.spearmanr(first, second).statistic)


def spearman_table(model_maps: pd.DataFrame,
                   reference: dict[str, np.ndarray]) -> pd.DataFrame:
    """ρ per (model, category): model_maps has model, family, category, map."""
    rows = [{"model": row.model, "family": row.family, "category": row.category,
             "spearman": spearman(row.map, reference[row.category])}
            for row in model_maps.itertuples() if row.category in reference]
    return pd.DataFrame(rows, columns=["model", "family", "category", "spearman"])


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof 1) of ρ per model, best first."""
    summary = table.groupby(["model", "family"], sort=False)["spearman"].agg(
        mean="mean", std="std", n_categories="count").reset_index()
    return summary.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def wilcoxon_greater(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """One-sided Wilcoxon signed-rank test that `first` is greater than `second`.

    Paired by category. Returns (statistic, p); p is NaN when every difference
    is zero (nothing to rank).
    """
    difference = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    difference = difference[np.isfinite(difference)]
    if not np.any(difference != 0):
        return math.nan, math.nan
    with warnings.catch_warnings():  # scipy warns on ties and small samples; p stays valid
        warnings.simplefilter("ignore")
        result = scipy_stats.wilcoxon(difference, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def wilcoxon_matrix(table: pd.DataFrame, order: list[str],
                    label: str = "family") -> pd.DataFrame:
    """p-values of 'row > column' for every ordered pair, rows and columns in `order`.

    `label` names the column of `table` that identifies a model in `order`.
    """
    by_category = table.pivot_table(index="category", columns=label, values="spearman")
    matrix = pd.DataFrame(np.nan, index=order, columns=order)
    for first in order:
        for second in order:
            if first != second:
                matrix.loc[first, second] = wilcoxon_greater(by_category[first],
                                                             by_category[second])[1]
    matrix.index.name = "first > second"
    return matrix


def wilcoxon_markdown(matrix: pd.DataFrame) -> str:
    """The upper triangle of `matrix` as table A.8.4: row model > column model."""
    order = list(matrix.index)
    if len(order) < 2:
        return f"Only one model ({', '.join(order)}): no pairwise test.\n"
    lines = ["p-values of the one-sided Wilcoxon signed-rank test on the per-category "
             "Spearman ρ: alternative = the row model's ρ is greater than the column "
             "model's. Models ordered by mean ρ.", "",
             "| first > second | " + " | ".join(order[1:]) + " |",
             "|---" * len(order) + "|"]
    for i, first in enumerate(order[:-1]):
        cells = ["" if j <= i else _p_text(matrix.loc[first, second])
                 for j, second in enumerate(order[1:], start=1)]
        lines.append(f"| {first} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _p_text(p_value: float) -> str:
    return "n/a" if not np.isfinite(p_value) else f"{p_value:.2g}"


def split_half_consistency(participant_maps: dict[str, np.ndarray], draws: int,
                           rng: np.random.Generator) -> np.ndarray:
    """Human consistency (A.8.3): per draw, the mean over categories of ρ between
    the average maps of two random halves of each category's participants.

    participant_maps: category -> P×48×48 maps (P >= 2). Returns the `draws`
    values; their mean is the consistency.
    """
    values = np.empty(draws)
    for draw in range(draws):
        per_category = []
        for maps in participant_maps.values():
            order = rng.permutation(len(maps))
            half = len(maps) // 2
            per_category.append(spearman(maps[order[:half]].mean(axis=0),
                                         maps[order[half:]].mean(axis=0)))
        values[draw] = np.nanmean(per_category)
    return values
