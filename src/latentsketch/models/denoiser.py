"""The LDM's noise predictor ε_ψ(z_t, z_y, t): an MLP U-Net over latent vectors.

Shape of the paper's Table 2, at widths taken from params: the exemplar latent
z_y is concatenated to the noisy latent, projected to the first width, then a
down path of residual MLP blocks (Linear, GroupNorm, time-conditioned
scale/shift, SiLU) narrows through `widths`, a bottleneck, and an up path that
widens back, concatenating the down path's activations (skips). A last residual
block also sees the input projection, and a plain Linear maps to ε: no norm on
the way out, so that ε can grow with z_t. Classifier-free guidance needs an
"absent exemplar": a learned null latent replaces z_y where `drop` is true.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from latentsketch.errors import InputError


class SinusoidalTimeEmbedding(nn.Module):
    """Timestep index -> [sin, cos] features at geometric frequencies, then an MLP."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise InputError(f"params time_dim: {dim} must be even (sin and cos halves).")
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        frequencies = torch.exp(-math.log(10_000.0) / max(half - 1, 1)
                                * torch.arange(half, device=t.device))
        angles = t.float()[:, None] * frequencies[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


def group_count(width: int) -> int:
    """GroupNorm groups: up to 8, keeping at least 4 features per group to normalize."""
    for groups in (8, 4, 2):
        if width % groups == 0 and width // groups >= 4:
            return groups
    return 1


class ResidualBlock(nn.Module):
    """Two Linear-GroupNorm-SiLU layers; the time embedding scales and shifts the first."""

    def __init__(self, d_in: int, d_out: int, time_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out)
        self.norm1 = nn.GroupNorm(group_count(d_out), d_out)
        self.time_to_scale_shift = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * d_out))
        self.linear2 = nn.Linear(d_out, d_out)
        self.norm2 = nn.GroupNorm(group_count(d_out), d_out)
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        scale, shift = self.time_to_scale_shift(time).chunk(2, dim=1)
        h = F.silu(self.norm1(self.linear1(x)) * (1 + scale) + shift)
        h = F.silu(self.norm2(self.linear2(h)))
        return h + self.skip(x)


class VectorAttention(nn.Module):
    """Self-attention among `tokens` equal slices of a feature vector, residual.

    The paper applies a 1-D attention layer to a length-1 sequence, where softmax
    attention reduces to a linear map; slicing the vector into tokens gives the
    layer something to attend over. Widths must divide into `tokens`.
    """

    def __init__(self, width: int, tokens: int = 8, heads: int = 4):
        super().__init__()
        token_dim = width // tokens
        if width % tokens or token_dim % heads:
            raise InputError(f"params ldm.widths: width {width} cannot be split into "
                             f"{tokens} tokens of {heads} heads; use multiples of "
                             f"{tokens * heads} with attention, or set attention: false.")
        self.tokens, self.heads = tokens, heads
        self.norm = nn.RMSNorm(width)
        self.qkv = nn.Linear(token_dim, 3 * token_dim)
        self.out = nn.Linear(token_dim, token_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, width = x.shape
        tokens = self.norm(x).reshape(batch, self.tokens, width // self.tokens)
        q, k, v = (part.reshape(batch, self.tokens, self.heads, -1).transpose(1, 2)
                   for part in self.qkv(tokens).chunk(3, dim=2))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        return x + self.out(attended.reshape(batch, self.tokens, -1)).reshape(batch, width)


class MLPUNet(nn.Module):
    """ε_ψ(z_t, z_y, t) for latent vectors of size `latent_dim`."""

    def __init__(self, latent_dim: int, widths: list[int], time_dim: int = 128,
                 attention: bool = False):
        super().__init__()
        if not widths or min(widths) < 1:
            raise InputError(f"params ldm.widths: {widths} must list positive widths.")
        self.config = {"kind": "mlp_unet", "latent_dim": latent_dim, "widths": list(widths),
                       "time_dim": time_dim, "attention": attention}
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        self.null_exemplar = nn.Parameter(torch.zeros(latent_dim))
        self.project_in = nn.Linear(2 * latent_dim, widths[0])
        self.down = nn.ModuleList(DownLevel(w, time_dim, attention) for w in widths)
        self.narrow = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.middle = DownLevel(widths[-1], time_dim, attention)
        self.up = nn.ModuleList(UpLevel(w, time_dim, attention) for w in widths)
        self.widen = nn.ModuleList(nn.Linear(b, a) for a, b in zip(widths, widths[1:]))
        # No normalization on the way out: ε must scale with z_t, and a norm here would
        # fix the output's magnitude whatever the input's.
        self.final = ResidualBlock(2 * widths[0], widths[0], time_dim)
        self.project_out = nn.Linear(widths[0], latent_dim)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | int, exemplar: torch.Tensor,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise; rows where `drop` is true see the null condition instead."""
        exemplar = with_null_condition(exemplar, self.null_exemplar, drop)
        time = self.time_embedding(timestep_batch(t, z_t))
        x = first = self.project_in(torch.cat([z_t, exemplar], dim=1))
        skips = []
        for level, down in enumerate(self.down):
            x, level_skips = down(x, time)
            skips.append(level_skips)
            if level < len(self.narrow):
                x = self.narrow[level](x)
        x, _ = self.middle(x, time)
        for level in reversed(range(len(self.up))):
            x = self.up[level](x, time, skips.pop())
            if level > 0:
                x = self.widen[level - 1](x)
        return self.project_out(self.final(torch.cat([x, first], dim=1), time))


class DownLevel(nn.Module):
    """Two residual blocks (and attention) at one width; returns both outputs as skips."""

    def __init__(self, width: int, time_dim: int, attention: bool):
        super().__init__()
        self.block1 = ResidualBlock(width, width, time_dim)
        self.block2 = ResidualBlock(width, width, time_dim)
        self.attention = VectorAttention(width) if attention else nn.Identity()

    def forward(self, x, time) -> tuple[torch.Tensor, list[torch.Tensor]]:
        first = self.block1(x, time)
        second = self.attention(self.block2(first, time))
        return second, [first, second]


class UpLevel(nn.Module):
    """Mirror of DownLevel: each block also reads the matching down-path activation."""

    def __init__(self, width: int, time_dim: int, attention: bool):
        super().__init__()
        self.block1 = ResidualBlock(2 * width, width, time_dim)
        self.block2 = ResidualBlock(2 * width, width, time_dim)
        self.attention = VectorAttention(width) if attention else nn.Identity()

    def forward(self, x, time, skips: list[torch.Tensor]) -> torch.Tensor:
        first, second = skips
        x = self.block1(torch.cat([x, second], dim=1), time)
        x = self.block2(torch.cat([x, first], dim=1), time)
        return self.attention(x)


def with_null_condition(exemplar: torch.Tensor, null: torch.Tensor,
                        drop: torch.Tensor | None) -> torch.Tensor:
    """Replace the exemplar by the learned null condition where `drop` is true."""
    if drop is None:
        return exemplar
    mask = drop.to(torch.bool).reshape(-1, *([1] * (exemplar.dim() - 1)))
    return torch.where(mask, null.to(exemplar.dtype).expand_as(exemplar), exemplar)


def timestep_batch(t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, device=like.device)
    return t.expand(like.shape[0]) if t.dim() == 0 else t


def build_denoiser(config: dict[str, Any]) -> nn.Module:
    """Rebuild a denoiser from the config saved beside its weights."""
    kind = config.get("kind")
    options = {k: v for k, v in config.items() if k != "kind"}
    if kind == "mlp_unet":
        return MLPUNet(**options)
    if kind == "pixel_unet":
        from latentsketch.models.pixel_unet import PixelUNet

        return PixelUNet(**options)
    raise InputError(f"denoiser config: unknown kind {kind!r}; the weights were written by "
                     "another version. Retrain with `dvc repro`.")
