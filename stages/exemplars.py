"""Stage exemplars: the medoid of every category (data/exemplars/exemplars.parquet)
and a labelled grid of the test exemplars (data/exemplars/test_exemplars.png).
"""
from __future__ import annotations

import logging

from latentsketch import paths
from latentsketch.data.exemplars import exemplar_grid, select_exemplars
from latentsketch.data.tables import load_drawings
from latentsketch.io import column_to_images, save_figure, write_parquet
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None = None) -> None:
    params = parse_plain_stage(argv, __doc__)
    runtime = setup(params, "exemplars")
    drawings = load_drawings(paths.PREPARED)
    exemplars = select_exemplars(drawings, params.exemplars, runtime.device)
    test = exemplars[exemplars["split"] == "test"]
    figure = exemplar_grid(column_to_images(test["pixels"]), list(test["category"]),
                           f"test exemplars ({len(test)} categories, medoids in "
                           f"{params.exemplars.feature} space)")
    write_parquet(paths.EXEMPLARS, exemplars)
    save_figure(paths.EXEMPLAR_GRID, figure)
    log.info("exemplars: %d categories (%d test), medoids in %s space",
             len(exemplars), len(test), params.exemplars.feature)


if __name__ == "__main__":
    run_stage(main)
