"""The pixel-space baseline's noise predictor: a small conditional 2-D U-Net.

The exemplar image enters as a second input channel beside the noisy image,
so the network sees both at every resolution from the first convolution on.
Each level halves the resolution (48 -> 24 -> 12 for three levels); residual
conv blocks carry a time-conditioned scale/shift as in the latent MLP U-Net.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from latentsketch.errors import InputError
from latentsketch.models.denoiser import (SinusoidalTimeEmbedding, group_count,
                                          timestep_batch, with_null_condition)

IMAGE_SIZE = 48


class ConvBlock(nn.Module):
    """Two 3×3 conv-GroupNorm-SiLU layers; time scales and shifts the first."""

    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm1 = nn.GroupNorm(group_count(c_out), c_out)
        self.time_to_scale_shift = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * c_out))
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(group_count(c_out), c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        scale, shift = self.time_to_scale_shift(time)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm1(self.conv1(x)) * (1 + scale) + shift)
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class PixelUNet(nn.Module):
    """ε_ψ(x_t, y, t) for 1×48×48 images; `channels` gives each level's width."""

    def __init__(self, channels: list[int], time_dim: int = 64):
        super().__init__()
        if not channels or IMAGE_SIZE % (2 ** (len(channels) - 1)):
            raise InputError(f"params pixel.channels: {channels} must list 1 to 5 levels "
                             f"(48 px is halved once per level after the first).")
        self.config = {"kind": "pixel_unet", "channels": list(channels),
                       "time_dim": time_dim}
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        self.null_exemplar = nn.Parameter(torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE))
        self.project_in = nn.Conv2d(2, channels[0], 3, padding=1)
        self.down = nn.ModuleList(ConvBlock(c, c, time_dim) for c in channels)
        self.downsample = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1)
                                        for a, b in zip(channels, channels[1:]))
        self.middle = ConvBlock(channels[-1], channels[-1], time_dim)
        self.up = nn.ModuleList(ConvBlock(2 * c, c, time_dim) for c in channels)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2)
                                      for a, b in zip(channels, channels[1:]))
        # no normalization on the way out, so that ε can scale with x_t
        self.final = ConvBlock(2 * channels[0], channels[0], time_dim)
        self.project_out = nn.Conv2d(channels[0], 1, 1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | int, exemplar: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise; rows where `drop` is true see the learned null exemplar."""
        exemplar = with_null_condition(exemplar, self.null_exemplar, drop)
        time = self.time_embedding(timestep_batch(t, x_t))
        x = first = self.project_in(torch.cat([x_t, exemplar], dim=1))
        skips = []
        for level, down in enumerate(self.down):
            x = down(x, time)
            skips.append(x)
            if level < len(self.downsample):
                x = self.downsample[level](x)
        x = self.middle(x, time)
        for level in reversed(range(len(self.up))):
            x = self.up[level](torch.cat([x, skips.pop()], dim=1), time)
            if level > 0:
                x = self.upsample[level - 1](x)
        return self.project_out(self.final(torch.cat([x, first], dim=1), time))
