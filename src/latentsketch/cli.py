"""The `latentsketch` command: check params, draw variations of your own exemplar."""
from __future__ import annotations

import argparse
import sys

import numpy as np

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


def load_exemplar(path: str) -> np.ndarray:
    """Any drawing image to a 48×48 uint8 exemplar, ink high (dark ink is inverted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path).convert("L")
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
        raise InputError(f"exemplar {path}: not a readable image ({error}); pass a PNG or "
                         "JPEG drawing.") from error
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.mean() > 127:  # most drawings are dark ink on paper: the models want ink high
        pixels = 255.0 - pixels
    # Area averaging keeps each pixel's ink coverage, as the prepared data does.
    small = Image.fromarray(pixels.astype(np.uint8)).resize((48, 48), Image.Resampling.BOX)
    return np.array(small, dtype=np.uint8)[None]


def draw(args: argparse.Namespace) -> None:
    import torch

    from latentsketch import io, paths
    from latentsketch.diffusion.ldm import load_ldm
    from latentsketch.models.rae import load_rae
    from latentsketch.plots import drawing_grid
    from latentsketch.runtime import resolve_device

    exemplar = load_exemplar(args.exemplar)  # cheap input first: fail before loading models
    device = resolve_device(args.device)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    rae = load_rae(paths.rae_dir(args.model), device)
    ldm = load_ldm(paths.ldm_dir(args.model), device)
    with torch.no_grad():
        latent = rae.encode(io.images_to_tensor(exemplar, device), generator=generator)
        latents = ldm.sample(latent.repeat(args.n, 1), sampler=args.sampler,
                             ddim_steps=args.steps, ddim_eta=1.0, generator=generator)
        variations = io.tensor_to_images(rae.decode(latents))
    io.save_figure(args.out, drawing_grid([exemplar, variations],
                                          row_labels=["exemplar", "variations"]))
    print(f"wrote {args.n} variations of {args.exemplar} by {args.model} to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentsketch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser("check", help="validate a params file and list the study")
    checker.add_argument("--params", default="params.yaml")
    checker.set_defaults(func=check)
    drawer = commands.add_parser("draw", help="draw variations of your own exemplar")
    drawer.add_argument("exemplar", help="image of one drawing (PNG, JPEG; any size)")
    drawer.add_argument("--model", default="models/focus",
                        help="trained model folder (with rae/ and ldm/)")
    drawer.add_argument("--n", type=int, default=20, help="number of variations")
    drawer.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddim")
    drawer.add_argument("--steps", type=int, default=50, help="DDIM steps")
    drawer.add_argument("--seed", type=int, default=0)
    drawer.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    drawer.add_argument("--out", default="variations.png")
    drawer.set_defaults(func=draw)
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
