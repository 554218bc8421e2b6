"""Artifacts on disk: atomic writes, image tables, weights with their config.

Every writer here goes through `atomic_path`: the bytes land in a temporary file
beside the target and are renamed over it only once complete, so a killed stage
never leaves a half-written file that DVC could cache.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from latentsketch.errors import InputError

WEIGHTS_FORMAT_VERSION = "1"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
IMAGE_SIZE = 48


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are shared files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | os.PathLike, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


def read_parquet(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: file not found; run the stage that writes it "
                         "(`dvc repro`) or fix the path.")
    return pd.read_parquet(path)


def write_csv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def save_figure(path: str | os.PathLike, figure) -> None:
    """Save a matplotlib figure atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120,
                       bbox_inches="tight")
    plt.close(figure)


# --- images -----------------------------------------------------------------------

def images_to_column(images: np.ndarray) -> list[bytes]:
    """N×48×48 uint8 images to a list of raw bytes, one Parquet cell each."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected N×{IMAGE_SIZE}×{IMAGE_SIZE} images, got {images.shape}")
    return [image.tobytes() for image in images]


def column_to_images(column: pd.Series | list[bytes]) -> np.ndarray:
    """Inverse of `images_to_column`: N×48×48 uint8."""
    flat = np.frombuffer(b"".join(column), dtype=np.uint8)
    if flat.size != len(column) * IMAGE_SIZE * IMAGE_SIZE:
        raise InputError(f"image column: cells are not {IMAGE_SIZE}×{IMAGE_SIZE} uint8; "
                         "regenerate the table with the current version (`dvc repro`).")
    return flat.reshape(len(column), IMAGE_SIZE, IMAGE_SIZE).copy()


def images_to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 N×48×48 (ink high) to float N×1×48×48 in [0, 1]."""
    tensor = torch.from_numpy(np.asarray(images, dtype=np.uint8)).to(device)
    return tensor.unsqueeze(1).float().div_(255.0)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """float N×1×48×48 in [0, 1] to uint8 N×48×48."""
    pixels = tensor.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.squeeze(1).cpu().numpy()


def latents_to_column(latents: np.ndarray | torch.Tensor) -> list[list[float]]:
    latents = np.asarray(latents.detach().cpu() if torch.is_tensor(latents) else latents,
                         dtype=np.float32)
    return [row for row in latents]


def column_to_latents(column: pd.Series) -> np.ndarray:
    return np.stack([np.asarray(cell, dtype=np.float32) for cell in column])


# --- weights ------------------------------------------------------------------------

def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor],
                 config: dict[str, Any]) -> None:
    """Weights as safetensors (no unpickling to load), config as JSON metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    metadata = {"config": json.dumps(config, sort_keys=True),
                "format_version": WEIGHTS_FORMAT_VERSION}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: str | os.PathLike,
                 device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Return (state_dict, config) saved by `save_weights`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"weights {path}: file not found; train the model first "
                         "(`dvc repro`) or fix the path.")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if "config" not in metadata:
        raise InputError(f"weights {path}: no config in the file's metadata; it was not "
                         "written by latentsketch. Retrain it with `dvc repro`.")
    return load_file(str(path), device=str(device)), json.loads(metadata["config"])
