"""Train one diffusion model: a latent model of the grid, or the pixel baseline.

    python stages/train_ldm.py <model> [--dir models/<model>] [--params params.yaml]
    python stages/train_ldm.py pixel

A latent model learns the training latents of models/<key>/latents, normalized
by their saved scalar mean and std, each conditioned on its category's
exemplar latent. `pixel` learns the 48×48 training drawings of data/prepared
conditioned on their exemplar images (data/exemplars). AdamW, step lr,
checkpoints under checkpoints/ldm/ (a killed run resumes); writes
<dir>/ldm/ldm.safetensors (weights, and the config that rebuilds the model)
and the per-epoch loss to logs/ldm/<key>.csv.
"""
from __future__ import annotations

import logging
from dataclasses import asdict

import pandas as pd
import torch

from latentsketch import paths
from latentsketch.diffusion import LatentDiffusion, NoiseSchedule, save_ldm
from latentsketch.diffusion.data import latent_training_pairs, pixel_training_pairs
from latentsketch.diffusion.ldm import PIXEL_MEAN, PIXEL_STD
from latentsketch.diffusion.train import train_denoiser
from latentsketch.grid import HUMAN, PIXEL
from latentsketch.io import write_csv
from latentsketch.models.denoiser import MLPUNet
from latentsketch.models.pixel_unet import PixelUNet
from latentsketch.models.rae import load_latent_stats
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import ModelStage, parse_model_stage

log = logging.getLogger("latentsketch")


def main(argv: list[str] | None) -> None:
    stage = parse_model_stage(argv, "Train a latent diffusion model, or the pixel baseline.",
                              refuse=(HUMAN,))
    runtime = setup(stage.params, f"train_ldm {stage.key}")
    build = pixel_model if stage.model == PIXEL else latent_model
    model, variations, exemplars = build(stage, runtime.device)
    training = training_settings(stage)
    fingerprint = {"ldm": asdict(stage.params.ldm), "training": training,
                   "denoiser": model.denoiser.config, "mean": model.mean, "std": model.std,
                   "n_train": len(variations), "seed": runtime.seed,
                   "precision": runtime.precision, "device": runtime.device.type}
    for stale in paths.ldm_dir(stage.dir).glob(".*.tmp"):  # left by a killed run
        stale.unlink()
    device = runtime.device
    history = train_denoiser(
        model.denoiser, model.schedule, model.normalize(variations).to(device),
        model.normalize(exemplars).to(device), **training,
        cond_drop_prob=stage.params.ldm.cond_drop_prob, runtime=runtime,
        name=f"train_ldm {stage.key}", checkpoint=paths.checkpoint("ldm", stage.key),
        config=fingerprint)
    model.history = tuple(history)
    path = save_ldm(paths.ldm_dir(stage.dir), model)
    write_csv(paths.log_csv("ldm", stage.key), pd.DataFrame(history))
    log.info("train_ldm %s: wrote %s (loss %.4f after %d epochs, %d training pairs)",
             stage.key, path, history[-1]["loss"], len(history), len(variations))


def latent_model(stage: ModelStage, device: torch.device
                 ) -> tuple[LatentDiffusion, torch.Tensor, torch.Tensor]:
    p = stage.params.ldm
    latents_dir = paths.latents_dir(stage.dir)
    mean, std = load_latent_stats(latents_dir)
    variations, exemplars = latent_training_pairs(latents_dir)
    denoiser = MLPUNet(variations.shape[1], p.widths, p.time_dim, p.attention)
    model = LatentDiffusion(denoiser, schedule(stage, device), mean, std)
    return model, variations, exemplars


def pixel_model(stage: ModelStage, device: torch.device
                ) -> tuple[LatentDiffusion, torch.Tensor, torch.Tensor]:
    p = stage.params.pixel
    variations, exemplars = pixel_training_pairs(paths.PREPARED, paths.EXEMPLARS)
    denoiser = PixelUNet(p.channels, p.time_dim)
    model = LatentDiffusion(denoiser, schedule(stage, device), PIXEL_MEAN, PIXEL_STD,
                            space="pixel")
    return model, variations, exemplars


def schedule(stage: ModelStage, device: torch.device) -> NoiseSchedule:
    p = stage.params.ldm
    return NoiseSchedule.build(p.schedule, p.timesteps, p.beta_start, p.beta_end, device)


def training_settings(stage: ModelStage) -> dict:
    """Epochs, batch and lr: the pixel section's for pixel, else the ldm section's."""
    ldm, pixel = stage.params.ldm, stage.params.pixel
    source = pixel if stage.model == PIXEL else ldm
    return {"epochs": source.epochs, "batch_size": source.batch_size, "lr": source.lr,
            "lr_step_epochs": ldm.lr_step_epochs, "lr_gamma": ldm.lr_gamma}


if __name__ == "__main__":
    run_stage(main)
