"""Diffusion: noise schedule, guided noise estimates, DDPM/DDIM chains, training.

The public entry points other stages use:

- `load_ldm(ldm_dir, device) -> LatentDiffusion`: a trained model with its
  denoiser, schedule (`schedule.alpha_bars` holds ᾱ_t) and latent mean/std;
- `guided_epsilon(denoiser, z_t, t, cond, guidance_scale)`: ε̃ of Eq. 8;
- `ddpm_sample` / `ddim_sample` (or `LatentDiffusion.chain`): reverse chains
  that call `hook(step, t, z_t, epsilon)` at every step.
"""
from latentsketch.diffusion.guidance import guided_epsilon
from latentsketch.diffusion.ldm import LatentDiffusion, load_ldm, save_ldm
from latentsketch.diffusion.loss import diffusion_loss
from latentsketch.diffusion.sampling import (StepHook, ddim_sample, ddim_timesteps,
                                             ddpm_sample, sample)
from latentsketch.diffusion.schedule import NoiseSchedule

__all__ = ["LatentDiffusion", "NoiseSchedule", "StepHook", "ddim_sample", "ddim_timesteps",
           "ddpm_sample", "diffusion_loss", "guided_epsilon", "load_ldm", "sample",
           "save_ldm"]
