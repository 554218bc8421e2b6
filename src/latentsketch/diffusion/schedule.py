"""The forward (noising) process of DDPM: β schedule, ᾱ, q-sample, posterior.

Timesteps are 0-indexed in code: index t in 0..T-1 is the paper's step t+1,
so `alpha_bars[0]` = 1 − β_1 and the clean latent z_0 sits before index 0
(`alpha_bars_prev[0]` = 1). Every per-step quantity is a length-T tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from latentsketch.errors import InputError

ScheduleKind = Literal["linear", "scaled_linear"]


def make_betas(kind: str, timesteps: int, beta_start: float,
               beta_end: float) -> torch.Tensor:
    """β_1..β_T: linear in β, or linear in √β ("scaled_linear", the reference code's)."""
    if timesteps < 1:
        raise InputError(f"params ldm.timesteps: {timesteps} must be at least 1.")
    if not 0 < beta_start <= beta_end < 1:
        raise InputError(f"params ldm.beta_start/beta_end: need 0 < {beta_start} <= "
                         f"{beta_end} < 1; fix the schedule bounds.")
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, timesteps,
                              dtype=torch.float64) ** 2
    raise InputError(f"params ldm.schedule: unknown {kind!r}; use linear or scaled_linear.")


@dataclass(frozen=True)
class NoiseSchedule:
    """β_t and the quantities derived from it, all float32 on one device."""
    kind: str
    beta_start: float
    beta_end: float
    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    alpha_bars_prev: torch.Tensor

    @classmethod
    def build(cls, kind: ScheduleKind = "linear", timesteps: int = 1000,
              beta_start: float = 1.5e-3, beta_end: float = 1.95e-2,
              device: torch.device | str = "cpu") -> "NoiseSchedule":
        betas = make_betas(kind, timesteps, beta_start, beta_end)
        alphas = 1.0 - betas
        # ᾱ_t = Π α_s (Eq. 18), accumulated in float64 so that 1 − ᾱ_t stays exact
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([alpha_bars.new_ones(1), alpha_bars[:-1]])
        as32 = lambda x: x.to(device=device, dtype=torch.float32)  # noqa: E731
        return cls(kind, beta_start, beta_end, as32(betas), as32(alphas),
                   as32(alpha_bars), as32(alpha_bars_prev))

    @classmethod
    def from_config(cls, config: dict[str, Any],
                    device: torch.device | str = "cpu") -> "NoiseSchedule":
        return cls.build(config["kind"], int(config["timesteps"]),
                         float(config["beta_start"]), float(config["beta_end"]), device)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "timesteps": self.timesteps,
                "beta_start": self.beta_start, "beta_end": self.beta_end}

    @property
    def timesteps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        return NoiseSchedule.from_config(self.config(), device)

    def q_sample(self, z0: torch.Tensor, t: torch.Tensor,
                 noise: torch.Tensor) -> torch.Tensor:
        """z_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε (Eq. 18)."""
        alpha_bar = _per_sample(self.alpha_bars, t, z0)
        return alpha_bar.sqrt() * z0 + (1.0 - alpha_bar).sqrt() * noise

    def predict_z0(self, z_t: torch.Tensor, t: torch.Tensor,
                   epsilon: torch.Tensor) -> torch.Tensor:
        """The clean latent implied by a noise estimate (Eq. 31)."""
        alpha_bar = _per_sample(self.alpha_bars, t, z_t)
        return (z_t - (1.0 - alpha_bar).sqrt() * epsilon) / alpha_bar.sqrt()

    def posterior_mean(self, z0: torch.Tensor, z_t: torch.Tensor,
                       t: torch.Tensor) -> torch.Tensor:
        """Mean μ̃_t(z_t, z_0) of r(z_{t−1} | z_t, z_0) (Eq. 30).

        The paper prints √ᾱ_t in the z_t coefficient; Bayes' rule on Eq. 17 and 19
        gives √α_t (as in Ho et al. 2020), which is what this computes.
        """
        beta = _per_sample(self.betas, t, z_t)
        alpha = _per_sample(self.alphas, t, z_t)
        alpha_bar = _per_sample(self.alpha_bars, t, z_t)
        alpha_bar_prev = _per_sample(self.alpha_bars_prev, t, z_t)
        coef_z0 = alpha_bar_prev.sqrt() * beta / (1.0 - alpha_bar)
        coef_zt = alpha.sqrt() * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        return coef_z0 * z0 + coef_zt * z_t

    def posterior_variance(self, t: torch.Tensor) -> torch.Tensor:
        """β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t (Eq. 30); zero at the last step."""
        t = torch.as_tensor(t, device=self.device)
        return ((1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars) * self.betas)[t]


def _per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast over a batch `like` (N×d latents or N×C×H×W images)."""
    t = torch.as_tensor(t, device=values.device).long()
    if t.dim() == 0:
        t = t.expand(like.shape[0])
    shape = (-1, *([1] * (like.dim() - 1)))
    return values[t].reshape(shape).to(device=like.device, dtype=like.dtype)
