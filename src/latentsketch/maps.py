"""Feature importance maps of a latent diffusion model, Eq. 9 (SPEC §6).

Along the guided reverse chain started from an exemplar, each step t adds

    |J_D(z_t) · s_t|,   s_t = −ε̃_t / √(1 − ᾱ_t)

per pixel, where D is the RAE decoder and s_t the guided score of the step. The
chain (the LDM's own DDPM or DDIM sampler, through its per-step hook) runs on
normalized latents ẑ = (z − mean) / std, so the Jacobian that multiplies s_t is
the one of ẑ ↦ D(mean + std · ẑ): the chain rule scales it by std. The product
is a Jacobian-vector product (forward-mode AD): the 2304 × d Jacobian is never
built.

Reference maps compare the models with people. A user-supplied Parquet file of
human maps has the schema

    category (str)  participant (str or int, optional)  map (48×48 floats)

where `map` is a list of 2304 numbers (row-major), a nested 48×48 list, or
2304 float32 values as raw bytes. Without such a file, the reference is a proxy,
labelled "proxy (ink frequency)" everywhere and never "human": the per-pixel
frequency of ink in the category's human test drawings.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm.auto import tqdm

from latentsketch.diffusion import LatentDiffusion, ddim_timesteps
from latentsketch.errors import InputError
from latentsketch.io import IMAGE_SIZE

log = logging.getLogger("latentsketch")

HUMAN_REFERENCE = "human"
PROXY_REFERENCE = "proxy (ink frequency)"
PIXELS = IMAGE_SIZE * IMAGE_SIZE
INK_THRESHOLD = 128  # uint8 level above which a pixel counts as ink

Contribution = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor,
                         torch.Tensor], torch.Tensor]


def jvp_contribution(decode: Callable[[torch.Tensor], torch.Tensor], latent: torch.Tensor,
                     direction: torch.Tensor) -> torch.Tensor:
    """|J_decode(latent) · direction| per pixel, by forward-mode AD (no Jacobian)."""
    with warnings.catch_warnings():  # torch scripts its jvp decompositions on first use
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated")
        _, change = torch.func.jvp(decode, (latent,), (direction,))
    return change.float().abs().reshape(len(latent), IMAGE_SIZE, IMAGE_SIZE)


CONVOLUTIONS = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)


def frozen_decoder(decoder: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of `decoder`, with the same outputs, whose JVP is cheaper.

    No parameter gradients; each BatchNorm that follows a convolution in a
    Sequential is folded into it; each convolution gets the exact tangent rule
    of a linear map (W x_t). PyTorch's generic rule runs three convolutions per
    layer here and steps through BatchNorm on its own: the JVP of the Table 1
    decoder costs about 3 forward passes that way, about 2 through this copy.
    Where a ReLU input is within rounding of 0 the copy may land on the other
    side of the kink (both sides are valid derivatives there): on random Table 1
    decoders, category maps then differ by < 1e-3 of their maximum (ρ > 0.9999).
    """
    decoder = copy.deepcopy(decoder).eval().requires_grad_(False)
    for parent in list(decoder.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Sequential):
                setattr(parent, name, _fold_batch_norms(child))
    for parent in list(decoder.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, CONVOLUTIONS) and child.padding_mode == "zeros":
                setattr(parent, name, LinearTangent(child))
    return decoder


def _fold_batch_norms(layers: torch.nn.Sequential) -> torch.nn.Sequential:
    folded, modules = [], list(layers)
    while modules:
        layer = modules.pop(0)
        if isinstance(layer, CONVOLUTIONS) and modules \
                and isinstance(modules[0], torch.nn.BatchNorm2d):
            layer = fuse_conv_bn_eval(layer, modules.pop(0),
                                      transpose=isinstance(layer, torch.nn.ConvTranspose2d))
        folded.append(layer)
    return torch.nn.Sequential(*folded)


class _AffineLayer(torch.autograd.Function):
    """layer(x) = W x + b with its exact tangent W x_t: a convolution's own rule."""
    generate_vmap_rule = True

    @staticmethod
    def forward(inputs: torch.Tensor, layer: torch.nn.Module) -> torch.Tensor:
        return layer(inputs)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.layer = inputs[1]

    @staticmethod
    def jvp(ctx, inputs_tangent: torch.Tensor, _) -> torch.Tensor:
        layer = ctx.layer
        if isinstance(layer, torch.nn.ConvTranspose2d):
            return torch.nn.functional.conv_transpose2d(
                inputs_tangent, layer.weight, None, layer.stride, layer.padding,
                layer.output_padding, layer.groups, layer.dilation)
        return torch.nn.functional.conv2d(inputs_tangent, layer.weight, None, layer.stride,
                                          layer.padding, layer.dilation, layer.groups)


class LinearTangent(torch.nn.Module):
    """Wraps a frozen convolution so that forward-mode AD uses `_AffineLayer`."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return _AffineLayer.apply(inputs, self.layer)


def feature_maps(ldm: LatentDiffusion, decode: Callable[[torch.Tensor], torch.Tensor],
                 exemplar_latents: torch.Tensor, *, variations: int, sampler: str = "ddim",
                 steps: int = 100, guidance_scale: float = 1.0, weighting: str = "score",
                 generator: torch.Generator | None = None,
                 autocast: Callable[[], contextlib.AbstractContextManager] =
                 contextlib.nullcontext,
                 contribution: Contribution = jvp_contribution,
                 progress: bool = False) -> torch.Tensor:
    """φ(x, y) of Eq. 9 for `variations` chains per exemplar: C×V×48×48.

    exemplar_latents: the RAE latents z_y of C exemplars (not normalized).
    decode: the RAE decoder, latents -> N×1×48×48 images.
    All C·V chains run as one batch of `ldm.chain`, each from its own noise;
    DDPM visits all T timesteps, DDIM `steps` of them. weighting "score"
    multiplies the Jacobian by s_t (the paper), "epsilon" by ε̃_t.
    """
    alpha_bars = ldm.schedule.alpha_bars
    total = ldm.schedule.timesteps if sampler == "ddpm" else \
        len(ddim_timesteps(ldm.schedule.timesteps, steps))
    bar = tqdm(total=total, desc="importance chain", disable=not progress, leave=False)
    importance = torch.zeros(len(exemplar_latents) * variations, IMAGE_SIZE, IMAGE_SIZE,
                             device=exemplar_latents.device)

    def decode_normalized(latent_norm: torch.Tensor) -> torch.Tensor:
        return decode(ldm.denormalize(latent_norm))  # the chain rule brings in std

    def accumulate(step: int, t: int, latent_norm: torch.Tensor,
                   epsilon: torch.Tensor) -> None:
        # the guided score of this very step, at its own timestep t
        score = -epsilon / (1.0 - alpha_bars[t]).sqrt()
        direction = score if weighting == "score" else epsilon
        with torch.no_grad(), autocast():
            importance.add_(contribution(decode_normalized, latent_norm, direction))  # Eq. 9
        bar.update()

    ldm.chain(exemplar_latents.repeat_interleave(variations, dim=0), sampler=sampler,
              hook=accumulate, steps=steps, guidance_scale=guidance_scale,
              generator=generator, autocast=autocast)
    bar.close()
    return importance.reshape(len(exemplar_latents), variations, IMAGE_SIZE, IMAGE_SIZE)


def category_maps(ldm: LatentDiffusion, decode: Callable[[torch.Tensor], torch.Tensor],
                  exemplar_latents: torch.Tensor, **chain_options) -> np.ndarray:
    """The feature importance map of each category: φ averaged over its chains."""
    per_chain = feature_maps(ldm, decode, exemplar_latents, **chain_options)
    return per_chain.mean(dim=1).cpu().numpy()


# --- map columns in Parquet -------------------------------------------------------

def maps_to_column(maps: np.ndarray) -> list[np.ndarray]:
    """N×48×48 maps to one flat float32 list (row-major) per Parquet cell."""
    maps = np.asarray(maps, dtype=np.float32)
    return [m.reshape(PIXELS) for m in maps]


def column_to_maps(column, what: str = "map column") -> np.ndarray:
    """Parquet map cells (flat list, nested 48×48 list or float32 bytes) to N×48×48."""
    return np.stack([_cell_to_map(cell, what, row) for row, cell in enumerate(column)])


def _numbers(cell, what: str, row: int) -> np.ndarray:
    """A flat or nested list cell as a float array (Parquet nests lists as arrays)."""
    try:
        if isinstance(cell, str):
            raise TypeError
        if len(cell) and np.ndim(cell[0]):
            return np.stack([np.asarray(part, dtype=np.float64) for part in cell])
        return np.asarray(cell, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what}, row {row}: not a list of numbers; write the map as "
                         "48×48 numbers (a flat list of 2304 or a nested 48×48 list).")


def _cell_to_map(cell, what: str, row: int) -> np.ndarray:
    if isinstance(cell, (bytes, bytearray)):
        if len(cell) != PIXELS * 4:
            raise InputError(f"{what}, row {row}: {len(cell)} bytes, expected {PIXELS * 4} "
                             "(48×48 float32); write the map as 2304 float32 values.")
        values = np.frombuffer(cell, dtype=np.float32)
    else:
        values = _numbers(cell, what, row)
        if values.shape not in ((PIXELS,), (IMAGE_SIZE, IMAGE_SIZE)):
            raise InputError(f"{what}, row {row}: shape {values.shape}, expected 48×48 "
                             "(2304 values); resize the map to 48×48.")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{what}, row {row}: contains NaN or infinite values; replace "
                         "them (e.g. by 0) before using the file.")
    return values.astype(np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)


# --- reference maps ------------------------------------------------------------------

def load_reference_maps(path: str | Path) -> pd.DataFrame:
    """User-supplied human maps, validated: category, participant (or None), map.

    `map` holds 48×48 float32 arrays. Without a participant column each category
    must have exactly one map; with it, one map per (category, participant).
    """
    path = Path(path)
    what = f"reference maps {path}"
    if not path.exists():
        raise InputError(f"{what}: file not found; fix params importance.reference_maps, "
                         "or set it to \"\" to compare with the ink-frequency proxy.")
    try:
        table = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a bad file
        raise InputError(f"{what}: not a readable Parquet file ({error}); write it with "
                         "pandas.DataFrame.to_parquet.")
    missing = [c for c in ("category", "map") if c not in table.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; expected columns "
                         "category, participant (optional) and map (48×48 floats).")
    if table.empty:
        raise InputError(f"{what}: no rows; add one map per category (and participant).")
    participant = table["participant"] if "participant" in table.columns else None
    reference = pd.DataFrame({
        "category": table["category"].astype(str),
        "participant": None if participant is None else participant.astype(str),
        "map": list(column_to_maps(table["map"], what))})
    _check_unique(reference, participant is not None, what)
    return reference


def _check_unique(reference: pd.DataFrame, by_participant: bool, what: str) -> None:
    keys = ["category", "participant"] if by_participant else ["category"]
    repeated = reference[reference.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        who = f", participant {first['participant']}" if by_participant else ""
        fix = ("keep one map per category and participant" if by_participant else
               "add a participant column, or average them into one map per category")
        raise InputError(f"{what}: category {first['category']}{who} has "
                         f"{len(repeated[repeated['category'] == first['category']])} maps; "
                         f"{fix}.")


def ink_frequency_maps(images: np.ndarray, categories: np.ndarray,
                       wanted: list[str]) -> pd.DataFrame:
    """The proxy reference: per category, the fraction of drawings inked per pixel."""
    rows = []
    for category in wanted:
        drawings = images[np.asarray(categories) == category]
        if len(drawings) == 0:
            raise InputError(f"prepared drawings: no test drawing of category {category}; "
                             "rerun `dvc repro prepare exemplars`.")
        rows.append({"category": category, "participant": None,
                     "map": (drawings >= INK_THRESHOLD).mean(axis=0).astype(np.float32)})
    return pd.DataFrame(rows, columns=["category", "participant", "map"])


def average_reference(reference: pd.DataFrame) -> dict[str, np.ndarray]:
    """One reference map per category: the mean over its participants."""
    return {category: np.mean(np.stack(rows["map"].to_list()), axis=0)
            for category, rows in reference.groupby("category", sort=True)}
