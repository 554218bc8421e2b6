"""Draw variations of every test exemplar with one trained diffusion model.

    python stages/sample.py <model> [--dir models/<model>] [--params params.yaml]
    python stages/sample.py pixel

sample.per_exemplar samples per test exemplar, from the guided reverse chain
(sample.sampler for latent models, sample.pixel_sampler for pixel), batched
across exemplars; latent samples are decoded by the model's RAE. Writes
<dir>/samples/samples.parquet (category, exemplar_drawing_id, sample_index,
pixels: 48×48 uint8 bytes) and <dir>/samples/grid.png (exemplars on the top
row, their samples below, as the paper's Fig. A.11).
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
import torch

from latentsketch import paths
from latentsketch.data.tables import load_exemplars
from latentsketch.diffusion import LatentDiffusion, load_ldm
from latentsketch.diffusion.data import unseen_exemplar_images, unseen_exemplar_latents
from latentsketch.errors import InputError
from latentsketch.grid import HUMAN, PIXEL
from latentsketch.io import (column_to_images, images_to_column, save_figure,
                             tensor_to_images, write_parquet)
from latentsketch.models.rae import load_latent_stats, load_rae
from latentsketch.plots import drawing_grid
from latentsketch.runtime import Runtime, run_stage, setup
from latentsketch.stage import ModelStage, parse_model_stage

log = logging.getLogger("latentsketch")

SAMPLES_FILE = "samples.parquet"
GRID_FILE = "grid.png"
GRID_EXEMPLARS = 10
GRID_SAMPLES = 8


def main(argv: list[str] | None) -> None:
    stage = parse_model_stage(argv, "Sample variations of the test exemplars.",
                              refuse=(HUMAN,))
    runtime = setup(stage.params, f"sample {stage.key}")
    model = load_ldm(paths.ldm_dir(stage.dir), runtime.device)
    began = time.perf_counter()
    if stage.model == PIXEL:
        exemplars, images = sample_pixels(stage, runtime, model)
    else:
        exemplars, images = sample_latents(stage, runtime, model)
    table = samples_table(exemplars, images, stage.params.sample.per_exemplar)
    out = paths.samples_dir(stage.dir)
    write_parquet(out / SAMPLES_FILE, table)
    save_figure(out / GRID_FILE, samples_grid(stage.key, table))
    log.info("sample %s: %d samples of %d test exemplars in %.1fs -> %s", stage.key,
             len(table), len(exemplars), time.perf_counter() - began, out)


def sample_latents(stage: ModelStage, runtime: Runtime, model: LatentDiffusion
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """Latent chains from each test exemplar's latent, decoded by the RAE."""
    latents_dir = paths.latents_dir(stage.dir)
    check_latent_stats(model, latents_dir)
    exemplars, exemplar_latents = unseen_exemplar_latents(latents_dir)
    p = stage.params.sample
    latents = run_chains(stage, runtime, model, exemplar_latents, p.sampler, p.ddim_steps,
                         p.batch_size)
    rae = load_rae(paths.rae_dir(stage.dir), runtime.device)
    decoded = []
    with torch.no_grad(), runtime.autocast():
        for batch in latents.split(p.image_batch_size):
            decoded.append(tensor_to_images(rae.decode(batch).float()))
    return exemplars, np.concatenate(decoded)


def sample_pixels(stage: ModelStage, runtime: Runtime, model: LatentDiffusion
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Pixel-space chains from each test exemplar image."""
    if model.space != "pixel":
        raise InputError(f"sample pixel: {paths.ldm_dir(stage.dir)} holds a latent model; "
                         "train the baseline with `python stages/train_ldm.py pixel`.")
    exemplars, exemplar_images = unseen_exemplar_images(paths.EXEMPLARS)
    p = stage.params.sample
    images = run_chains(stage, runtime, model, exemplar_images, p.pixel_sampler,
                        p.pixel_ddim_steps, p.image_batch_size)
    return exemplars, tensor_to_images(images)


def run_chains(stage: ModelStage, runtime: Runtime, model: LatentDiffusion,
               exemplars: torch.Tensor, sampler: str, ddim_steps: int,
               batch_size: int) -> torch.Tensor:
    """per_exemplar samples of every exemplar, all exemplars batched together."""
    p = stage.params.sample
    cond = exemplars.to(runtime.device).repeat_interleave(p.per_exemplar, dim=0)
    return model.sample(cond, sampler=sampler, ddim_steps=ddim_steps, ddim_eta=p.ddim_eta,
                        guidance_scale=p.guidance_scale, generator=runtime.generator(2),
                        batch_size=batch_size, autocast=runtime.autocast,
                        progress=True)


def check_latent_stats(model: LatentDiffusion, latents_dir) -> None:
    """The model must have been trained on the latents it is about to be conditioned on."""
    mean, std = load_latent_stats(latents_dir)
    if not (math.isclose(mean, model.mean, rel_tol=1e-5, abs_tol=1e-6)
            and math.isclose(std, model.std, rel_tol=1e-5)):
        raise InputError(f"latents {latents_dir}: mean/std {mean:.4g}/{std:.4g} differ "
                         f"from the diffusion model's {model.mean:.4g}/{model.std:.4g}; the "
                         "latents were re-encoded since training. Retrain (`dvc repro`).")


def samples_table(exemplars: pd.DataFrame, images: np.ndarray,
                  per_exemplar: int) -> pd.DataFrame:
    """One row per sample, exemplar-major, in the order the chains produced them."""
    rows = exemplars.loc[exemplars.index.repeat(per_exemplar)].reset_index(drop=True)
    return pd.DataFrame({"category": rows["category"],
                         "exemplar_drawing_id": rows["drawing_id"].astype("int64"),
                         "sample_index": np.tile(np.arange(per_exemplar), len(exemplars)),
                         "pixels": images_to_column(images)})


def samples_grid(key: str, table: pd.DataFrame):
    """Up to 10 exemplars on the top row, up to 8 of their samples in the rows below."""
    exemplar_table = load_exemplars(paths.EXEMPLARS)
    image_of = dict(zip(exemplar_table.table["drawing_id"], exemplar_table.images))
    shown = table.drop_duplicates("category").head(GRID_EXEMPLARS)
    rows = [np.stack([image_of[i] for i in shown["exemplar_drawing_id"]])]
    for index in range(min(GRID_SAMPLES, int(table["sample_index"].max()) + 1)):
        cells = table[table["category"].isin(shown["category"])
                      & (table["sample_index"] == index)]
        rows.append(column_to_images(cells["pixels"]))
    labels = ["exemplar"] + ["samples"] + [""] * (len(rows) - 2)
    return drawing_grid(rows, row_labels=labels,
                        column_labels=[short_name(c) for c in shown["category"]],
                        title=f"{key}: test exemplars (top) and samples")



def short_name(category: str) -> str:
    """"Early_Aramaic/character03" -> "Early_Ara 03", short enough for a grid column."""
    group, _, member = category.rpartition("/")
    return f"{group[:9]} {member.replace('character', '')}".strip()


if __name__ == "__main__":
    run_stage(main)
