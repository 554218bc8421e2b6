"""Stage prepare: official Omniglot archives or Quick, Draw! files to one table of
48×48 drawings (data/prepared/drawings.parquet) and its counts (metrics/prepare.json).
"""
from __future__ import annotations

import logging
import time

from latentsketch import paths
from latentsketch.data.prepare import prepare_drawings, summarize
from latentsketch.io import write_json, write_parquet
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None = None) -> None:
    params = parse_plain_stage(argv, __doc__)
    setup(params, "prepare")
    began = time.perf_counter()
    table = prepare_drawings(params.prepare, seed=params.seed)
    summary = summarize(table)
    write_parquet(paths.PREPARED, table)
    write_json(paths.PREPARE_SUMMARY, summary)
    log.info("prepare: %s, %d categories (%d test), %d drawings in %.1fs",
             summary["dataset"], summary["categories"], summary["test"]["categories"],
             summary["drawings"], time.perf_counter() - began)


if __name__ == "__main__":
    run_stage(main)
