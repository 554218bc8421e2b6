"""Argument handling shared by the thin scripts in stages/."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from latentsketch.config import Params, load_params
from latentsketch.errors import InputError
from latentsketch.grid import HUMAN, PIXEL, ModelSpec, parse_model_name


@dataclass(frozen=True)
class ModelStage:
    params: Params
    key: str  # the entry as written in params (also the folder and metrics name)
    spec: ModelSpec | None  # None for the pixel baseline and the human drawings
    dir: Path
    model: str = ""  # the model argument as given: a grid entry, "pixel" or "human"


def parse_model_stage(argv: list[str] | None, description: str, *,
                      refuse: tuple[str, ...] = ()) -> ModelStage:
    """Parse `<model> [--dir DIR] [--params FILE]` and load the params.

    `refuse` names the non-grid models ("pixel", "human") the stage has nothing to
    do for; passing one is an InputError that says what to pass instead.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", help="grid entry (proto-500, none, ...), pixel or human")
    parser.add_argument("--dir", help="artifact folder (default: models/<model>)")
    parser.add_argument("--params", default="params.yaml", help="params file")
    args = parser.parse_args(argv)
    if args.model in refuse:
        accepted = "a grid entry such as 'none' or 'proto-500'"
        accepted += "" if PIXEL in refuse else ", or 'pixel'"
        raise InputError(f"{parser.prog}: {description.rstrip('.')} does not apply to "
                         f"{args.model!r}; pass {accepted}.")
    params = load_params(args.params)
    spec = None if args.model in (PIXEL, HUMAN) else parse_model_name(args.model)
    folder = Path(args.dir) if args.dir else Path("models") / args.model
    return ModelStage(params=params, key=folder.name, spec=spec, dir=folder, model=args.model)


def parse_plain_stage(argv: list[str] | None, description: str) -> Params:
    """Parse `[--params FILE]` for stages that are not per model."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file")
    return load_params(parser.parse_args(argv).params)
