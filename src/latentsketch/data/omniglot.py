"""Omniglot: official archives of 105×105 PNGs to 48×48 drawings, ink high.

Layout inside an archive (zip or extracted folder):
`<archive>/<Alphabet>/characterNN/<image>_<drawer>.png`, black ink on white.
Category id: "<Alphabet>/characterNN". Weak split (SPEC §1): characters
01..`test_characters` of every alphabet are test, all others train.
"""
from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from latentsketch.config import PrepareParams
from latentsketch.data.prepare import drawings_table
from latentsketch.data.sources import OMNIGLOT_OFFICIAL, Source, open_source
from latentsketch.errors import InputError
from latentsketch.io import IMAGE_SIZE

log = logging.getLogger("latentsketch")

DATASET = "omniglot"
SOURCE_SIZE = 105
# PNG counts of the official files: a download or a mirror is checked against them.
ARCHIVE_PNG_COUNTS = {
    "images_background.zip": 19_280,
    "images_evaluation.zip": 13_180,
    "images_background_small1.zip": 2_720,  # 136 characters × 20 drawers
    "images_background_small2.zip": 3_120,  # 156 characters × 20 drawers
}
CHARACTER = re.compile(r"character(\d+)$")
DECODE_CHUNK = 2048


@dataclass(frozen=True)
class Drawing:
    """One PNG of an archive, not yet decoded."""
    alphabet: str
    character: str
    drawer: str
    png: bytes
    where: str  # archive and member, for error messages


def prepare_omniglot(params: PrepareParams) -> pd.DataFrame:
    if not params.archives:
        raise InputError("params prepare.archives: empty; list the Omniglot archives to "
                         "read, e.g. [images_background.zip, images_evaluation.zip].")
    source = open_source(params.source, OMNIGLOT_OFFICIAL, params.cache,
                         params.download_retries)
    drawings: list[Drawing] = []
    seen: dict[str, str] = {}
    for archive in params.archives:
        found = read_archive(source, archive)
        _check_alphabets_unique(found, archive, seen)
        drawings.extend(found)
    splits = [character_split(d.character, params.test_characters) for d in drawings]
    return drawings_table(
        dataset=DATASET, split=splits,
        category=[f"{d.alphabet}/{d.character}" for d in drawings],
        alphabet=[d.alphabet for d in drawings],
        drawer=[d.drawer for d in drawings], images=pixels48(drawings))


def character_split(character: str, test_characters: int) -> str:
    """Weak split: characterNN with NN <= test_characters is test."""
    match = CHARACTER.match(character)
    if match is None:
        raise InputError(f"Omniglot folder {character!r}: expected characterNN; the "
                         "archive does not have the official layout.")
    return "test" if int(match.group(1)) <= test_characters else "train"


# --- reading archives ------------------------------------------------------------

def read_archive(source: Source, archive: str) -> list[Drawing]:
    """Every PNG of one archive: a zip, or the folder it extracts to."""
    path = _locate_archive(source, archive)
    if path.is_dir():
        members = [(str(p.relative_to(path.parent)), p.read_bytes())
                   for p in sorted(path.rglob("*.png"))]
    else:
        members = _zip_members(path, drop_if_bad=source.remote)
    drawings = [_parse_member(name, png, archive) for name, png in members]
    try:
        _check_count(drawings, archive, path)
    except InputError:
        if source.remote:  # a bad download must not stay in the cache
            path.unlink(missing_ok=True)
        raise
    log.info("omniglot: %s: %d drawings of %d characters", archive, len(drawings),
             len({(d.alphabet, d.character) for d in drawings}))
    return drawings


def _locate_archive(source: Source, archive: str) -> Path:
    if not source.remote and archive.endswith(".zip"):
        extracted = Path(source.base) / archive[: -len(".zip")]
        if not (Path(source.base) / archive).exists() and extracted.is_dir():
            return extracted
    return source.locate(archive, "Omniglot archive")


def _zip_members(path: Path, drop_if_bad: bool) -> list[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".png"))
            return [(name, archive.read(name)) for name in names]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        if drop_if_bad:
            path.unlink(missing_ok=True)
        raise InputError(f"Omniglot archive {path}: not a readable zip ({error}); it is "
                         "truncated or corrupt: delete it and download it again (prepare."
                         "source: official) or copy the official file.") from error


def _parse_member(name: str, png: bytes, archive: str) -> Drawing:
    parts = PurePosixPath(name).parts
    if len(parts) < 3:
        raise InputError(f"Omniglot archive {archive}: member {name!r} is not "
                         "<Alphabet>/characterNN/<image>_<drawer>.png; use the official "
                         "archive.")
    alphabet, character, filename = parts[-3:]
    drawer = PurePosixPath(filename).stem.rsplit("_", 1)[-1]
    return Drawing(alphabet, character, drawer, png, f"{archive}:{name}")


def _check_count(drawings: list[Drawing], archive: str, path: Path) -> None:
    expected = ARCHIVE_PNG_COUNTS.get(Path(archive).name)
    expected = expected or ARCHIVE_PNG_COUNTS.get(f"{Path(archive).name}.zip")
    if not drawings:
        raise InputError(f"Omniglot archive {path}: holds no PNG drawings; point "
                         "prepare.source and prepare.archives at the official files.")
    if expected is not None and len(drawings) != expected:
        raise InputError(f"Omniglot archive {path}: {len(drawings)} PNGs where the "
                         f"official file has {expected}; it is incomplete or altered: "
                         "replace it with the official file.")


def _check_alphabets_unique(drawings: list[Drawing], archive: str,
                            seen: dict[str, str]) -> None:
    """Two archives with the same alphabet would give two categories one id."""
    for alphabet in sorted({d.alphabet for d in drawings}):
        if alphabet in seen:
            raise InputError(f"params prepare.archives: alphabet {alphabet!r} is in both "
                             f"{seen[alphabet]} and {archive}, so its categories would "
                             "be counted twice; list only one of the two archives.")
        seen[alphabet] = archive


# --- pixels ------------------------------------------------------------------------

def pixels48(drawings: list[Drawing]) -> np.ndarray:
    """Decode and downsample in chunks, so full Omniglot never sits in memory at 105²."""
    out = np.empty((len(drawings), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with tqdm(total=len(drawings), desc="omniglot", unit="png", leave=False) as bar:
        for start in range(0, len(drawings), DECODE_CHUNK):
            chunk = drawings[start:start + DECODE_CHUNK]
            out[start:start + len(chunk)] = downsample(decode(chunk))
            bar.update(len(chunk))
    return out


def decode(drawings: list[Drawing]) -> np.ndarray:
    """PNG bytes to N×105×105 float32 ink in [0, 1] (the PNGs have black ink)."""
    ink = np.empty((len(drawings), SOURCE_SIZE, SOURCE_SIZE), dtype=np.float32)
    for i, drawing in enumerate(drawings):
        ink[i] = 1.0 - _png_pixels(drawing) / 255.0
    return ink


def _png_pixels(drawing: Drawing) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(drawing.png))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise InputError(f"Omniglot image {drawing.where}: not a readable PNG ({error}); "
                         "replace the archive with the official file.") from error
    if image.size != (SOURCE_SIZE, SOURCE_SIZE):
        raise InputError(f"Omniglot image {drawing.where}: {image.size[0]}×"
                         f"{image.size[1]} pixels where Omniglot has {SOURCE_SIZE}×"
                         f"{SOURCE_SIZE}; replace the archive with the official file.")
    return np.asarray(image.convert("L"), dtype=np.float32)


def area_weights(source: int, target: int) -> torch.Tensor:
    """target×source matrix averaging each target pixel's exact footprint.

    Area averaging is the box filter with fractional coverage (OpenCV's
    INTER_AREA): an output pixel is the ink fraction of the region it covers, so
    grey levels keep the stroke's coverage and no ringing appears, unlike
    Lanczos, whose negative lobes leave halos around thin strokes. PIL's BOX
    filter differs only in rounding partial pixels in or out.
    """
    scale = source / target
    edges = torch.arange(target + 1, dtype=torch.float64) * scale
    left, right = edges[:-1, None], edges[1:, None]
    pixel = torch.arange(source, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(right, pixel + 1) - torch.maximum(left, pixel)).clamp(min=0)
    return (overlap / scale).float()


def downsample(ink: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """N×S×S float ink in [0, 1] to N×size×size uint8 (ink = 255), by area."""
    weights = area_weights(ink.shape[-1], size)
    small = weights @ torch.from_numpy(ink) @ weights.T
    return small.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
