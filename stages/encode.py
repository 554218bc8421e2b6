"""Encode every prepared drawing and every exemplar with a trained RAE.

    python stages/encode.py <model> [--dir models/<model>] [--params params.yaml]

Writes models/<key>/latents/drawings.parquet (drawing_id, category, split,
latent), exemplars.parquet (category, split, drawing_id, latent) and
stats.json: the one scalar mean and std of the training latents that the
diffusion model normalizes with (SPEC §3). The latents are the ones the
diffusion model learns: a posterior sample for kl, the codewords for vq.
"""
from __future__ import annotations

import logging

import torch

from latentsketch import paths
from latentsketch.data.tables import load_drawings, load_exemplars
from latentsketch.errors import InputError
from latentsketch.io import latents_to_column, write_json, write_parquet
from latentsketch.models.rae import STATS_FILE, encode_images, load_rae
from latentsketch.grid import HUMAN, PIXEL
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_model_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None) -> None:
    stage = parse_model_stage(argv, "Encode the drawings and exemplars with a trained RAE.",
                              refuse=(PIXEL, HUMAN))
    runtime = setup(stage.params, f"encode {stage.key}")
    rae = load_rae(paths.rae_dir(stage.dir), runtime.device)
    generator = runtime.generator(offset=2)  # kl: the posterior samples
    drawings, exemplars = load_drawings(paths.PREPARED), load_exemplars(paths.EXEMPLARS)
    out = paths.latents_dir(stage.dir)

    latents = encode_images(rae, drawings.images, runtime.device, generator,
                            autocast=runtime.autocast)
    table = drawings.table[["drawing_id", "category", "split"]].copy()
    table["latent"] = latents_to_column(latents)
    write_parquet(out / "drawings.parquet", table)

    exemplar_latents = encode_images(rae, exemplars.images, runtime.device, generator,
                                     autocast=runtime.autocast)
    exemplar_table = exemplars.table[["category", "split", "drawing_id"]].copy()
    exemplar_table["latent"] = latents_to_column(exemplar_latents)
    write_parquet(out / "exemplars.parquet", exemplar_table)

    stats = latent_stats(latents[torch.tensor((table["split"] == "train").to_numpy())])
    write_json(out / STATS_FILE, {**stats, "latent_dim": rae.latent_dim})
    log.info("encode %s: %d drawings, %d exemplars, training latents mean %.4g std %.4g",
             stage.key, len(table), len(exemplar_table), stats["mean"], stats["std"])


def latent_stats(train_latents: torch.Tensor) -> dict[str, float]:
    """One scalar mean and std over every element of the training latents."""
    if train_latents.numel() == 0:
        raise InputError("encode: no training drawings to compute the latent statistics "
                         f"from; check the split column of {paths.PREPARED}.")
    values = train_latents.double()
    return {"mean": values.mean().item(), "std": values.std(unbiased=False).item()}


if __name__ == "__main__":
    run_stage(main)
