"""The critics' networks: a trunk to a 256-d embedding, then a small head.

Both critics share the trunks (SPEC §4): a conv-4 trunk for Omniglot and a
small ResNet for QuickDraw-FS, each ending in a 256-d embedding. The
recognizability critic puts a 128-d linear metric layer on top (distances
are measured there); the originality critic puts SimCLR's 128-d projection
MLP on top for its loss, and originality is measured on the 256-d embedding
below it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentsketch.errors import InputError
from latentsketch.io import IMAGE_SIZE, load_weights

EMBEDDING_DIM = 256
HEAD_DIM = 128
TRUNKS = ("conv4", "resnet")
HEADS = ("metric", "projection")


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv 3×3, BatchNorm, ReLU, 2×2 max-pool: one stage of the conv-4 trunk."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class Conv4Trunk(nn.Module):
    """Four conv blocks (48 → 3 pixels; 64 channels in Snell et al.), linear to 256."""

    def __init__(self, channels: int = 64, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        widths = (1, channels, channels, channels, channels)
        stages = [conv_block(a, b) for a, b in zip(widths, widths[1:])]
        self.blocks = nn.Sequential(*stages)
        side = IMAGE_SIZE // 16
        self.embed = nn.Linear(channels * side * side, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.blocks(images).flatten(1))


class BasicBlock(nn.Module):
    """Two 3×3 convs with a shortcut (a strided 1×1 conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels))
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetTrunk(nn.Module):
    """A small ResNet: a 3×3 stem, three strided residual stages, global pooling."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256),
                 embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        stem = widths[0] // 2
        layers: list[nn.Module] = [nn.Conv2d(1, stem, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        for in_channels, out_channels in zip((stem, *widths[:-1]), widths):
            layers.append(BasicBlock(in_channels, out_channels, stride=2))
        self.blocks = nn.Sequential(*layers)
        self.embed = nn.Linear(widths[-1], embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.blocks(images).mean(dim=(2, 3)))


class Critic(nn.Module):
    """A trunk and a head: `features` gives the 256-d embedding, `forward` the head's."""

    def __init__(self, trunk: str = "conv4", head: str = "metric", channels: int = 64):
        super().__init__()
        if trunk not in TRUNKS or head not in HEADS:
            raise InputError(f"critic: unknown trunk {trunk!r} or head {head!r}; use one "
                             f"of {TRUNKS} and one of {HEADS}.")
        self.config = {"trunk": trunk, "head": head, "channels": channels,
                       "embedding_dim": EMBEDDING_DIM, "head_dim": HEAD_DIM}
        if trunk == "conv4":
            self.trunk = Conv4Trunk(channels)
        else:
            self.trunk = ResNetTrunk((channels, 2 * channels, 4 * channels))
        if head == "metric":
            self.head = nn.Linear(EMBEDDING_DIM, HEAD_DIM)
        else:  # SimCLR's projection: the loss lives here, the features below it
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM),
                                      nn.ReLU(), nn.Linear(EMBEDDING_DIM, HEAD_DIM))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(images))


def load_critic(path: str | Path, device: torch.device | str = "cpu") -> Critic:
    """Rebuild a critic saved by `io.save_weights(path, critic.state_dict(), config)`."""
    state, config = load_weights(path, device)
    critic = critic_from_config(config, where=str(path))
    critic.load_state_dict(state)
    return critic.to(device).eval()


def critic_from_config(config: dict[str, Any], where: str) -> Critic:
    try:
        return Critic(config["trunk"], config["head"], config["channels"])
    except KeyError as missing:
        raise InputError(f"critic weights {where}: config lacks {missing}; retrain the "
                         "critics with `dvc repro train_critics`.")
