"""The regularized autoencoder (RAE) of the paper's Table 1.

Encoder: four 4×4 convolutions with BatchNorm and ReLU (1×48×48 → 16×24×24 →
32×12×12 → 64×7×7 → 128×3×3), then a Linear layer to the latent of size d.
Decoder: a 6×6 transposed convolution from the latent seen as d×1×1 to
128×6×6, three 4×4 transposed convolutions up to 16×48×48, a ZeroPad2d and a
4×4 convolution back to 1×48×48, and a sigmoid.

Two regularizers change the latent itself rather than adding a head on it:
kl adds a log-variance head and decodes a reparametrized sample; vq quantizes
the latent with a codebook. Every other regularizer's head lives in
`rae.regularizers` so that one state dict holds the whole trained model.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch
from torch import Tensor, nn

from latentsketch.augment import augment_batch
from latentsketch.errors import InputError
from latentsketch.grid import REGULARIZERS
from latentsketch.io import images_to_tensor, load_weights, read_json
from latentsketch.regularizers import (RegularizerInput, build_regularizers, needs_exemplars,
                                       needs_views, regularization)
from latentsketch.regularizers.kl import reparametrize
from latentsketch.regularizers.vq import VectorQuantizer

WEIGHTS_FILE = "rae.safetensors"
STATS_FILE = "stats.json"
TRUNK_FEATURES = 128 * 3 * 3


@dataclass(frozen=True)
class RaeConfig:
    """Everything needed to rebuild a trained RAE; saved with its weights."""
    latent_dim: int = 64
    betas: dict[str, float] = field(default_factory=dict)
    n_classes: int = 0  # training categories, for the classif head
    vq_codebook_size: int = 512
    vq_subvector_dim: int = 4
    proto_projector_width: int = 128
    contrastive_probe_dim: int = 128
    simclr_temperature: float = 0.5
    barlow_lambda: float = 5.0e-3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Encoding:
    """One encoder pass. `latent` is what the decoder sees and diffusion learns."""
    latent: Tensor
    mean: Tensor  # the encoder's deterministic output (kl: the posterior mean)
    logvar: Tensor | None = None  # kl only
    unquantized: Tensor | None = None  # vq only: the latent before quantization
    codewords: Tensor | None = None  # vq only: its codewords, without straight-through


def conv_block(c_in: int, c_out: int, padding: int) -> list[nn.Module]:
    # No bias: the BatchNorm right after has its own shift (Table 1 counts none).
    return [nn.Conv2d(c_in, c_out, 4, stride=2, padding=padding, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


def deconv_block(c_in: int, c_out: int, kernel: int, stride: int,
                 padding: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=padding,
                               bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU()]


class Encoder(nn.Module):
    def __init__(self, latent_dim: int, with_logvar: bool = False):
        super().__init__()
        # Padding 2 at the third block turns 12×12 into 7×7, as in Table 1.
        self.trunk = nn.Sequential(*conv_block(1, 16, 1), *conv_block(16, 32, 1),
                                   *conv_block(32, 64, 2), *conv_block(64, 128, 1),
                                   nn.Flatten())
        self.to_latent = nn.Linear(TRUNK_FEATURES, latent_dim)
        self.to_logvar = nn.Linear(TRUNK_FEATURES, latent_dim) if with_logvar else None

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        features = self.trunk(images)
        logvar = self.to_logvar(features) if self.to_logvar is not None else None
        return self.to_latent(features), logvar


class Decoder(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            *deconv_block(latent_dim, 128, 6, 1, 0), *deconv_block(128, 64, 4, 2, 1),
            *deconv_block(64, 32, 4, 2, 1), *deconv_block(32, 16, 4, 2, 1),
            # Pad right and bottom to 49×49 so that a 4×4 conv with padding 1 gives 48×48.
            nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(16, 1, 4, stride=1, padding=1),
            nn.Sigmoid())

    def forward(self, latent: Tensor) -> Tensor:
        return self.layers(latent[:, :, None, None])


class RAE(nn.Module):
    """Encoder, decoder, the latent-shaping parts (kl, vq) and the regularizer heads."""

    def __init__(self, config: RaeConfig):
        super().__init__()
        unknown = sorted(set(config.betas) - set(REGULARIZERS))
        if unknown:
            raise InputError(f"RAE config: unknown regularizers {unknown}; use "
                             f"{', '.join(REGULARIZERS)}.")
        self.config = config
        self.encoder = Encoder(config.latent_dim, with_logvar="kl" in config.betas)
        self.decoder = Decoder(config.latent_dim)
        self.quantizer = (VectorQuantizer(config.latent_dim, config.vq_codebook_size,
                                          config.vq_subvector_dim)
                          if "vq" in config.betas else None)
        self.regularizers = build_regularizers(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode_full(self, images: Tensor, generator: torch.Generator | None = None
                    ) -> Encoding:
        """Encode and keep what the regularizers need (posterior, codewords)."""
        mean, logvar = self.encoder(images)
        latent = mean if logvar is None else reparametrize(mean, logvar, generator)
        encoding = Encoding(latent=latent, mean=mean, logvar=logvar)
        if self.quantizer is not None:
            encoding.unquantized = latent
            encoding.latent, encoding.codewords = self.quantizer(latent)
        return encoding

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The latent handed to diffusion: kl a posterior sample, vq the codewords."""
        return self.encode_full(images, generator).latent

    def decode(self, latent: Tensor) -> Tensor:
        """Images in [0, 1] from latents (no quantization here: pass codewords)."""
        return self.decoder(latent)

    def forward(self, images: Tensor, generator: torch.Generator | None = None
                ) -> tuple[Encoding, Tensor]:
        encoding = self.encode_full(images, generator)
        return encoding, self.decode(encoding.latent)


@contextlib.contextmanager
def frozen_running_stats(model: nn.Module):
    """Train-mode BatchNorm that normalizes by the batch but leaves running stats alone.

    The augmented views and the exemplars go through the encoder in their own
    passes; momentum 0 keeps them out of the running statistics, so that eval
    mode normalizes clean drawings with statistics of clean drawings.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, momentum in zip(norms, saved):
            norm.momentum = momentum


@torch.no_grad()
def initialize_codebook(rae: RAE, images: Tensor, generator: torch.Generator) -> None:
    """vq models: start the codebook at sub-vectors of these images' latents."""
    rae.train()
    with frozen_running_stats(rae):
        latents = rae.encode_full(images, generator).unquantized
    rae.quantizer.initialize_from(latents, generator)


def reconstruction_loss(images: Tensor, reconstructions: Tensor) -> Tensor:
    """Squared error summed over pixels, mean over the batch (Eq. 1, first term)."""
    return (reconstructions.float() - images.float()).pow(2).flatten(1).sum(1).mean()


def training_loss(rae: RAE, images: Tensor, labels: Tensor, generator: torch.Generator,
                  exemplar_images: Tensor | None = None,
                  autocast: Callable[[], ContextManager] = contextlib.nullcontext
                  ) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 1 on one batch: reconstruction + Σ_r β_r · L_r, and every unweighted term.

    `labels` index the training categories; `exemplar_images` (one per category,
    in the same order) are needed by proto only. The decoder always reconstructs
    the clean drawing from its clean latent; augmented views feed only the
    regularizers.
    """
    with autocast():
        encoding, reconstructions = rae(images, generator)
        batch = RegularizerInput(encoding=encoding, labels=labels)
        if needs_views(rae.regularizers):
            batch.views = _view_latents(rae, images, generator)
        if needs_exemplars(rae.regularizers):
            batch.exemplar_labels = labels.unique()
            with frozen_running_stats(rae):
                batch.exemplar_latents = rae.encode(exemplar_images[batch.exemplar_labels],
                                                    generator)
        weighted, terms = regularization(rae.regularizers, rae.config.betas, batch)
    reconstruction = reconstruction_loss(images, reconstructions)
    return reconstruction + weighted, {"reconstruction": reconstruction, **terms}


def _view_latents(rae: RAE, images: Tensor, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """Latents of two independently augmented views of every image, in one pass."""
    views = augment_batch(torch.cat([images, images]), generator)
    with frozen_running_stats(rae):
        latents = rae.encode(views, generator)
    return latents[:len(images)], latents[len(images):]


@torch.no_grad()
def encode_images(rae: RAE, images: np.ndarray, device: torch.device,
                  generator: torch.Generator | None = None, batch_size: int = 1024,
                  autocast: Callable[[], ContextManager] = contextlib.nullcontext) -> Tensor:
    """Latents (float32, on the CPU) of N×48×48 uint8 drawings, in batches."""
    rae.eval()
    latents = []
    for start in range(0, len(images), batch_size):
        chunk = images_to_tensor(images[start:start + batch_size], device)
        with autocast():
            latents.append(rae.encode(chunk, generator).float().cpu())
    return torch.cat(latents) if latents else torch.zeros(0, rae.latent_dim)


def load_rae(rae_dir: str | Path, device: torch.device | str = "cpu") -> RAE:
    """The trained RAE saved by stages/train_rae.py, in eval mode on `device`."""
    state, config = load_weights(Path(rae_dir) / WEIGHTS_FILE, device)
    known = RaeConfig.__dataclass_fields__
    rae = RAE(RaeConfig(**{k: v for k, v in config.items() if k in known}))
    rae.load_state_dict(state)
    return rae.to(device).eval()


def load_latent_stats(latents_dir: str | Path) -> tuple[float, float]:
    """The one scalar mean and std of the training latents (SPEC §3)."""
    path = Path(latents_dir) / STATS_FILE
    if not path.exists():
        raise InputError(f"latent stats {path}: not found; run the encode stage "
                         "(`dvc repro encode@<model>`) first.")
    stats = read_json(path)
    return float(stats["mean"]), float(stats["std"])
