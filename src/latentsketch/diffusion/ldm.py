"""A trained diffusion model as one object: denoiser, schedule, normalization.

The same object serves the latent models and the pixel-space baseline. The
diffusion runs on normalized values ẑ = (z − mean) / std: for latents the one
scalar mean and std of the training latents (SPEC §3), for pixels mean = std
= 0.5, which maps images in [0, 1] onto [−1, 1].
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from latentsketch.diffusion.sampling import Sampler, StepHook, ddim_sample, ddpm_sample
from latentsketch.diffusion.sampling import sample as sample_chain
from latentsketch.diffusion.schedule import NoiseSchedule
from latentsketch.errors import InputError
from latentsketch.io import load_weights, save_weights
from latentsketch.models.denoiser import build_denoiser

WEIGHTS_FILE = "ldm.safetensors"
PIXEL_MEAN = PIXEL_STD = 0.5
PIXEL_CLIP = 1.0  # pixel samples live in [−1, 1] once normalized: clip ẑ_0 there


@dataclass
class LatentDiffusion:
    """A denoiser with its schedule and the normalization it was trained under."""
    denoiser: nn.Module
    schedule: NoiseSchedule
    mean: float
    std: float
    space: str = "latent"  # "latent" or "pixel"
    history: tuple[dict[str, float], ...] = ()

    @property
    def clip_z0(self) -> float | None:
        """Pixel chains clip their estimate of the clean image; latents are unbounded."""
        return PIXEL_CLIP if self.space == "pixel" else None

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean) / self.std

    def denormalize(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Back to the RAE's latent scale (or to [0, 1] pixels); dz/dẑ = std."""
        return z_hat * self.std + self.mean

    def config(self) -> dict[str, Any]:
        return {"denoiser": self.denoiser.config, "schedule": self.schedule.config(),
                "mean": self.mean, "std": self.std, "space": self.space,
                "epochs": len(self.history),
                "final_loss": self.history[-1]["loss"] if self.history else None}

    def sample(self, exemplars: torch.Tensor, *, sampler: Sampler, ddim_steps: int = 50,
               ddim_eta: float = 0.0, guidance_scale: float = 1.0,
               generator: torch.Generator | None = None, batch_size: int = 4096,
               autocast: Callable[[], ContextManager] = contextlib.nullcontext,
               progress: bool = False) -> torch.Tensor:
        """One sample per exemplar row (un-normalized in, un-normalized out)."""
        samples = sample_chain(self.denoiser, self.schedule, self.normalize(exemplars),
                               sampler=sampler, ddim_steps=ddim_steps, ddim_eta=ddim_eta,
                               guidance_scale=guidance_scale, generator=generator,
                               batch_size=batch_size, clip_z0=self.clip_z0,
                               autocast=autocast, progress=progress)
        return self.denormalize(samples)

    def chain(self, exemplars: torch.Tensor, *, sampler: Sampler, hook: StepHook,
              steps: int = 50, eta: float = 0.0, guidance_scale: float = 1.0,
              generator: torch.Generator | None = None,
              autocast: Callable[[], ContextManager] = contextlib.nullcontext
              ) -> torch.Tensor:
        """One reverse chain over the whole batch, calling `hook` at every step.

        The hook sees normalized z_t; `denormalize` maps it to the decoder's input.
        Returns the un-normalized samples.
        """
        cond = self.normalize(exemplars)
        options = dict(guidance_scale=guidance_scale, generator=generator, hook=hook,
                       clip_z0=self.clip_z0, autocast=autocast)
        if sampler == "ddim":
            samples = ddim_sample(self.denoiser, self.schedule, cond, steps=steps, eta=eta,
                                  **options)
        else:
            samples = ddpm_sample(self.denoiser, self.schedule, cond, **options)
        return self.denormalize(samples)


def save_ldm(ldm_dir: str | Path, model: LatentDiffusion) -> Path:
    """Weights and the config that rebuilds the model, in ldm_dir/ldm.safetensors."""
    path = Path(ldm_dir) / WEIGHTS_FILE
    save_weights(path, model.denoiser.state_dict(), model.config())
    return path


def load_ldm(ldm_dir: str | Path, device: torch.device | str = "cpu") -> LatentDiffusion:
    """The model saved by stages/train_ldm.py, in eval mode on `device`."""
    state, config = load_weights(Path(ldm_dir) / WEIGHTS_FILE, device)
    missing = {"denoiser", "schedule", "mean", "std", "space"} - set(config)
    if missing:
        raise InputError(f"diffusion model {ldm_dir}: config lacks {sorted(missing)}; it "
                         "was written by another version. Retrain it (`dvc repro`).")
    denoiser = build_denoiser(config["denoiser"])
    denoiser.load_state_dict(state)
    schedule = NoiseSchedule.from_config(config["schedule"], device)
    return LatentDiffusion(denoiser.to(device).eval(), schedule, float(config["mean"]),
                           float(config["std"]), config["space"])
