"""Stage study: Fig. 2 (scores, fits, best models) and Fig. 3 (their samples).

Reads metrics/scores/*.json of the grid, the model under study, the pixel
baseline and the human drawings. Writes study/ (summary.csv, fits.csv,
best.json, fig2.png, samples_<family>.png, samples.png), metrics/study.json and
plots/fig2.csv.
"""
from __future__ import annotations

import logging

from latentsketch import paths, study
from latentsketch.data.tables import load_exemplars
from latentsketch.grid import FOCUS_DIR, parse_model_name
from latentsketch.io import save_figure, write_csv, write_json
from latentsketch.plots import drawing_grid, family_label, fig2_figure
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None) -> None:
    params = parse_plain_stage(argv, __doc__)
    setup(params, "study")
    scores = study.load_scores(paths.SCORE_METRICS, study.study_keys(params))
    table = study.place_models(scores)
    fits = study.family_fits(table, params.study.fit_degree)
    best = study.best_models(table)
    for family, key in best.items():
        row = table[table["key"] == key].iloc[0]
        log.info("study: best %s is %s (distance to human %.3f)", family, key,
                 row["distance_to_human"])

    write_csv(paths.STUDY_DIR / "summary.csv", study.summary_table(table, best))
    write_csv(paths.STUDY_DIR / "fits.csv", study.fits_table(fits))
    write_json(paths.STUDY_DIR / "best.json", best)
    write_json(paths.STUDY_METRICS,
               study.study_metrics(table, parse_model_name(params.focus).name))
    write_csv(paths.FIG2_PLOT, study.fig2_rows(table))
    focus = FOCUS_DIR if FOCUS_DIR in set(table["key"]) else None
    save_figure(paths.STUDY_DIR / "fig2.png", fig2_figure(table, fits, best, focus))
    names = {key: (f"{model} (under study)" if key == FOCUS_DIR else model)
             for key, model in zip(table["key"], table["model"])}
    draw_samples(best, names, params.study.grid_exemplars, params.study.grid_samples)


def draw_samples(best: dict[str, str], names: dict[str, str], n_exemplars: int,
                 n_samples: int) -> None:
    """Per family a grid of exemplars and samples; one combined Fig. 3 grid."""
    exemplars = load_exemplars(paths.EXEMPLARS)
    samples = {}
    # the baselines first, as in the paper's Fig. 3
    for family in sorted(best, key=lambda f: (f not in study.BASELINES, f)):
        key = best[family]
        samples_file = paths.samples_dir(paths.MODELS / key) / "samples.parquet"
        if samples_file.exists():
            samples[family] = study.load_samples(samples_file)
        else:
            log.warning("study: no samples at %s; no grid for %s", samples_file, family)
    if not samples:
        return
    test = exemplars.split("test")
    shared = set(test.table["category"])
    for table, _ in samples.values():
        shared &= set(table["category"])
    categories = study.spread_pick(list(shared), n_exemplars)
    exemplar_of = dict(zip(test.table["category"], test.images))

    for family, (table, images) in samples.items():
        rows = [[exemplar_of[c], *study.samples_of(table, images, c, n_samples)]
                for c in categories]
        figure = drawing_grid(rows, row_labels=categories,
                              column_labels=["exemplar"],
                              title=f"{family_label(family)}: {names[best[family]]}")
        save_figure(paths.STUDY_DIR / f"samples_{family}.png", figure)

    rows = [[exemplar_of[c] for c in categories]]
    rows += [[study.samples_of(table, images, c, 1)[0] for c in categories]
             for table, images in samples.values()]
    labels = ["Exemplars"] + [f"{family_label(f)}\n{names[best[f]]}" for f in samples]
    columns = [category.replace("/", "/\n") for category in categories]
    save_figure(paths.STUDY_DIR / "samples.png",
                drawing_grid(rows, row_labels=labels, column_labels=columns))
    log.info("study: sample grids of %d families over %d exemplars", len(samples),
             len(categories))


if __name__ == "__main__":
    run_stage(main)
