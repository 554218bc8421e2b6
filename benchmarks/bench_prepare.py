"""Time the prepare step on full Omniglot (32,460 PNGs), or on a QuickDraw-FS build.

    python benchmarks/bench_prepare.py                     # ../shared/data/omniglot
    python benchmarks/bench_prepare.py --source official   # download first (cached)
    python benchmarks/bench_prepare.py --quickdraw params/quickdraw-local.yaml

Prints the wall time and the drawings per second; writes nothing but the cache.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from latentsketch.config import PrepareParams, load_params
from latentsketch.data.prepare import prepare_drawings, summarize
from latentsketch.runtime import set_threads, setup_logging

ROOT = Path(__file__).resolve().parents[1]


def omniglot_params(source: str) -> PrepareParams:
    return PrepareParams(dataset="omniglot", source=source,
                         archives=["images_background.zip", "images_evaluation.zip"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(ROOT.parent / "shared/data/omniglot"),
                        help="Omniglot folder, URL or 'official'")
    parser.add_argument("--quickdraw", metavar="PARAMS",
                        help="time the QuickDraw-FS build of this params file instead")
    parser.add_argument("--threads", default="auto", help="PyTorch CPU threads")
    args = parser.parse_args()
    setup_logging()
    set_threads(args.threads if args.threads == "auto" else int(args.threads))
    if args.quickdraw:
        loaded = load_params(args.quickdraw)
        params, seed = loaded.prepare, loaded.seed
        if not Path(params.source).is_absolute() and params.source != "official":
            params = dataclasses.replace(params, source=str(ROOT / params.source))
    else:
        params, seed = omniglot_params(args.source), 0
    began = time.perf_counter()
    table = prepare_drawings(params, seed)
    seconds = time.perf_counter() - began
    summary = summarize(table)
    print(f"prepare {summary['dataset']}: {summary['categories']} categories "
          f"({summary['test']['categories']} test), {summary['drawings']} drawings in "
          f"{seconds:.1f} s = {summary['drawings'] / seconds:.0f} drawings/s")


if __name__ == "__main__":
    main()
