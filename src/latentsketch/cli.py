"""The `latentsketch` command: check params, draw variations of your own exemplar."""
from __future__ import annotations

import argparse
import sys

from latentsketch.errors import InputError


def check(args: argparse.Namespace) -> None:
    from latentsketch.config import load_params
    from latentsketch.grid import study_models

    params = load_params(args.params)
    models = study_models(params)
    print(f"{args.params}: valid; dataset {params.prepare.dataset} from "
          f"{params.prepare.source}; {len(models)} latent models + pixel baseline:")
    for spec in models:
        print(f"  {spec.name:<24} family {spec.family}")
    print(f"model under study (models/focus): {params.focus}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentsketch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser("check", help="validate a params file and list the study")
    checker.add_argument("--params", default="params.yaml")
    checker.set_defaults(func=check)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
