"""The study: every scored model in the originality-recognizability plane (SPEC §5).

Reads the score files of the grid, the model under study, the pixel baseline and
the human drawings; normalizes originality over all of them; measures each
model's distance to the human point; fits, per regularizer family, the paper's
parametric curve (A.5) and picks the family's model closest to the human.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentsketch.errors import InputError
from latentsketch.grid import FOCUS_DIR, HUMAN, NONE, PIXEL, parse_model_name
from latentsketch.scores import distance_to_human, normalize_originality

log = logging.getLogger("latentsketch")

SCORE_FIELDS = ("model", "key", "family", "beta", "recognizability", "originality",
                "n_samples")
# Families that are one model each, never fitted: the two baselines.
BASELINES = (NONE, PIXEL)


# --- which score files make the study -------------------------------------------

def study_keys(params) -> list[str]:
    """Score keys of the study: grid entries, the focus model, pixel, human.

    The model under study counts as a grid entry; when it is one already (same
    canonical name), the grid's copy is kept and "focus" is left out.
    """
    keys = list(params.grid)
    grid_names = {parse_model_name(entry).name for entry in params.grid}
    if parse_model_name(params.focus).name not in grid_names:
        keys.append(FOCUS_DIR)
    return keys + [PIXEL, HUMAN]


def read_score(path: Path) -> dict:
    """One metrics/scores/<key>.json, checked for the fields the study needs."""
    try:
        score = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"score file {path}: not valid JSON ({error}); rerun its score "
                         "stage (`dvc repro`).")
    missing = [name for name in SCORE_FIELDS if name not in score]
    if missing:
        raise InputError(f"score file {path}: missing fields {missing}; rerun its score "
                         "stage with the current version (`dvc repro`).")
    return score


def load_scores(metrics_dir: str | Path, keys: list[str]) -> pd.DataFrame:
    """The score files of `keys`, one row each; the human's is required.

    A missing model is left out with a warning, so that a partial study can
    still be drawn while the rest of the grid trains.
    """
    metrics_dir = Path(metrics_dir)
    rows, missing = [], []
    for key in keys:
        path = metrics_dir / f"{key}.json"
        if not path.exists():
            missing.append(key)
            continue
        score = read_score(path)
        rows.append({**{name: score[name] for name in SCORE_FIELDS}, "key": key,
                     "family": _family(key, score), "beta": float(score["beta"] or 0.0)})
    if HUMAN in missing:
        raise InputError(f"score file {metrics_dir / 'human.json'}: not found; the study "
                         "needs the human point: run `dvc repro score_human`.")
    if missing:
        log.warning("study: no scores yet for %s; left out of the study", ", ".join(missing))
    table = pd.DataFrame(rows, columns=list(SCORE_FIELDS))
    if (table["key"] != HUMAN).sum() == 0:
        raise InputError(f"score files in {metrics_dir}: none for a model of the study; "
                         "run the models' score stages (`dvc repro`).")
    return table


def _family(key: str, score: dict) -> str:
    """The baselines and the human are their own families, whatever the file says."""
    if key in (HUMAN, PIXEL):
        return key
    return score.get("family") or parse_model_name(score["model"]).family


# --- normalization and distance (SPEC §4, in latentsketch.scores) --------------------

def place_models(scores: pd.DataFrame) -> pd.DataFrame:
    """Add originality_norm and distance_to_human to every row of `scores`."""
    table = scores.copy()
    normalized = normalize_originality(dict(zip(table["key"], table["originality"])))
    table["originality_norm"] = table["key"].map(normalized)
    human = table.loc[table["key"] == HUMAN].iloc[0]
    table["distance_to_human"] = distance_to_human(
        table[["originality_norm", "recognizability"]].to_numpy(),
        (human["originality_norm"], human["recognizability"]))
    return table


def best_models(table: pd.DataFrame) -> dict[str, str]:
    """Per family, the key of the model closest to the human point."""
    models = table[table["family"] != HUMAN]
    closest = models.loc[models.groupby("family")["distance_to_human"].idxmin()]
    return dict(sorted(zip(closest["family"], closest["key"])))


# --- the parametric fit of A.5 -------------------------------------------------------

@dataclass(frozen=True)
class ParametricFit:
    """originality(u) and recognizability(u), u the normalized log β in [0, 1]."""
    family: str
    term: str  # the regularizer whose β the curve runs over
    n_betas: int
    beta_min: float
    beta_max: float
    originality: np.ndarray  # polynomial coefficients, highest degree first
    recognizability: np.ndarray

    def curve(self, points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(β, originality, recognizability) along the curve, β increasing."""
        u = np.linspace(0.0, 1.0, points)
        log_beta = np.log(self.beta_min) + u * (np.log(self.beta_max) - np.log(self.beta_min))
        return (np.exp(log_beta), np.polyval(self.originality, u),
                np.polyval(self.recognizability, u))


def normalized_log_beta(betas: np.ndarray) -> np.ndarray:
    """log β min-max scaled to [0, 1]: the fit's parameter, whatever β's range."""
    log_beta = np.log(np.asarray(betas, dtype=float))
    return (log_beta - log_beta.min()) / (log_beta.max() - log_beta.min())


def parametric_fit(family: str, betas, originality, recognizability, degree: int = 2,
                   term: str | None = None) -> ParametricFit | None:
    """Two least-squares polynomial fits over the normalized log β (paper A.5).

    None when the family has fewer distinct βs than the degree needs (a
    degree-2 fit needs three); the caller says so in the log.
    """
    betas = np.asarray(betas, dtype=float)
    if len(np.unique(betas)) < degree + 1:
        return None
    u = normalized_log_beta(betas)
    return ParametricFit(
        family=family, term=term or family, n_betas=len(np.unique(betas)),
        beta_min=float(betas.min()), beta_max=float(betas.max()),
        originality=np.polyfit(u, np.asarray(originality, dtype=float), degree),
        recognizability=np.polyfit(u, np.asarray(recognizability, dtype=float), degree))


def varied_term(family: str, models: pd.Series) -> str:
    """The regularizer whose β the family's models vary (the first one that does).

    A single regularizer is its own term; in a mix such as proto+barlow the
    study usually holds one β fixed and sweeps the other, and the curve must
    run over the swept one.
    """
    weights = [parse_model_name(name).betas for name in models]
    for term in family.split("+"):
        if len({w.get(term) for w in weights}) > 1:
            return term
    return family.split("+")[0]


def family_fits(table: pd.DataFrame, degree: int = 2) -> dict[str, ParametricFit]:
    """The parametric fit of every regularizer family with enough βs."""
    fits = {}
    models = table[~table["family"].isin([HUMAN, *BASELINES])]
    for family, rows in models.groupby("family"):
        term = varied_term(family, rows["model"])
        betas = [parse_model_name(name).betas[term] for name in rows["model"]]
        fit = parametric_fit(family, betas, rows["originality_norm"],
                             rows["recognizability"], degree, term)
        if fit is None:
            log.info("study: %s has %d β value(s), fewer than the %d a degree-%d fit "
                     "needs; no curve drawn", family, len(set(betas)), degree + 1, degree)
        else:
            fits[family] = fit
    return fits


def fits_table(fits: dict[str, ParametricFit]) -> pd.DataFrame:
    """One row per fitted family: β range and both polynomials (c0 = constant term)."""
    rows = []
    for fit in fits.values():
        row = {"family": fit.family, "term": fit.term, "n_betas": fit.n_betas,
               "beta_min": fit.beta_min, "beta_max": fit.beta_max}
        for name in ("originality", "recognizability"):
            for power, coefficient in enumerate(getattr(fit, name)[::-1]):
                row[f"{name}_c{power}"] = float(coefficient)
        rows.append(row)
    return pd.DataFrame(rows)


# --- what the stage writes -----------------------------------------------------------

def summary_table(table: pd.DataFrame, best: dict[str, str]) -> pd.DataFrame:
    """summary.csv: every entry with its scores, distance and whether it is best."""
    columns = ["key", "model", "family", "beta", "originality", "originality_norm",
               "recognizability", "distance_to_human", "n_samples"]
    summary = table[columns].copy()
    summary["best"] = summary["key"].isin(best.values())
    return summary.sort_values(["family", "beta"]).reset_index(drop=True)


def study_metrics(table: pd.DataFrame, focus_model: str | None = None) -> dict:
    """metrics/study.json: each model's three figures, and the human point.

    The model under study always appears as "focus", also when it duplicates a grid
    entry (then with that entry's figures), so `dvc metrics diff` after
    `dvc exp run -S beta=...` always shows it under the same name.
    """
    def figures(row) -> dict:
        return {"originality": float(row["originality"]),
                "originality_norm": float(row["originality_norm"]),
                "recognizability": float(row["recognizability"])}

    models = {}
    for _, row in table[table["key"] != HUMAN].iterrows():
        models[row["key"]] = {"model": row["model"], "family": row["family"],
                              "beta": float(row["beta"]), **figures(row),
                              "distance_to_human": float(row["distance_to_human"])}
    if focus_model and FOCUS_DIR not in models:
        twins = [key for key, entry in models.items() if entry["model"] == focus_model]
        if twins:
            models[FOCUS_DIR] = dict(models[twins[0]])
    human = table.loc[table["key"] == HUMAN].iloc[0]
    return {"models": models, "human": figures(human)}


def fig2_rows(table: pd.DataFrame) -> pd.DataFrame:
    """plots/fig2.csv for `dvc plots`: originality is the normalized one, as in Fig. 2."""
    rows = table.rename(columns={"originality": "originality_raw",
                                 "originality_norm": "originality",
                                 "distance_to_human": "distance"})
    return rows[["key", "family", "beta", "originality", "recognizability", "distance",
                 "originality_raw"]].reset_index(drop=True)


# --- Fig. 3: samples of the best models ------------------------------------------------

def load_samples(samples_file: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """samples.parquet as (rows without pixels, N×48×48 uint8), sorted for display."""
    from latentsketch.io import column_to_images, read_parquet

    table = read_parquet(samples_file, "samples")
    missing = {"category", "sample_index", "pixels"} - set(table.columns)
    if missing:
        raise InputError(f"samples {samples_file}: missing columns {sorted(missing)}; "
                         "rerun its sample stage (`dvc repro`).")
    table = table.sort_values(["category", "sample_index"]).reset_index(drop=True)
    return table.drop(columns="pixels"), column_to_images(table["pixels"])


def spread_pick(items: list[str], count: int) -> list[str]:
    """`count` items evenly spaced over the sorted list (all when fewer)."""
    items = sorted(items)
    if len(items) <= count:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def samples_of(table: pd.DataFrame, images: np.ndarray, category: str,
               count: int) -> np.ndarray:
    """The first `count` samples of a category, by sample index."""
    return images[(table["category"] == category).to_numpy()][:count]
