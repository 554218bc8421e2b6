"""params.yaml: one file, one section per stage; unknown keys are errors.

Each section is a frozen dataclass whose defaults are the CPU-sized defaults.
`load_params` reads the YAML, rejects any key the schema does not know (with a
"did you mean" hint), checks every value's type and returns a `Params`.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from latentsketch.errors import InputError

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class QuickDrawParams:
    """QuickDraw-FS builder knobs (SPEC §1); used when prepare.dataset is quickdraw."""
    format: Literal["raw", "simplified", "numpy_bitmap"] = "numpy_bitmap"
    categories: list[str] = field(default_factory=list)  # empty: every file in source
    max_drawings_per_category: int = 3000
    line_width: float = 2.0  # pixels at 48×48, for stroke formats
    clusters_per_category: int = 8
    n_per_class: int = 200
    min_cohesion: float = 0.0
    test_fraction: float = 115 / 665  # the paper's 550:115 category split


@dataclass(frozen=True)
class PrepareParams:
    """Turn an official data set into one Parquet table of 48×48 drawings."""
    dataset: Literal["omniglot", "quickdraw"] = "omniglot"
    # "official" downloads from the official URLs; anything else is a local
    # mirror directory (or file:// URL) holding the same files.
    source: str = "data/embedded"
    # Omniglot archives (zip files or extracted folders) to read from `source`.
    archives: list[str] = field(default_factory=lambda: ["images_background_small1.zip"])
    test_characters: int = 3  # character01..characterNN of each alphabet are test
    download_retries: int = 3
    quickdraw: QuickDrawParams = field(default_factory=QuickDrawParams)


@dataclass(frozen=True)
class ExemplarParams:
    """The exemplar of a category is its medoid in this feature space."""
    feature: Literal["blur", "pixels"] = "blur"
    blur_sigma: float = 2.0


@dataclass(frozen=True)
class CriticParams:
    """Recognizability (prototypical net) and originality (SimCLR) critics."""
    trunk: Literal["conv4", "resnet"] = "conv4"
    binarize_threshold: float = 0.3
    proto_episodes: int = 2000
    proto_ways: int = 60
    proto_queries: int = 5
    simclr_epochs: int = 20
    simclr_batch_size: int = 256
    simclr_temperature: float = 0.5
    lr: float = 1.0e-3
    checkpoint_every: int = 200  # episodes between checkpoints of the proto critic


@dataclass(frozen=True)
class RaeParams:
    """Regularized autoencoder of the paper's Table 1 and its training."""
    latent_dim: int = 64
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1.0e-4
    weight_decay: float = 1.0e-5
    lr_step_epochs: int = 0  # 0: constant lr; the paper: 70 on Omniglot
    lr_gamma: float = 0.25
    vq_codebook_size: int = 512
    vq_subvector_dim: int = 4
    proto_projector_width: int = 128
    contrastive_probe_dim: int = 128
    simclr_temperature: float = 0.5
    barlow_lambda: float = 5.0e-3


@dataclass(frozen=True)
class LdmParams:
    """Latent diffusion model: schedule, MLP U-Net denoiser and its training."""
    timesteps: int = 1000
    schedule: Literal["linear", "scaled_linear"] = "linear"
    beta_start: float = 1.5e-3
    beta_end: float = 1.95e-2
    widths: list[int] = field(default_factory=lambda: [512, 256, 128])
    time_dim: int = 128
    attention: bool = False
    cond_drop_prob: float = 0.1
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1.0e-4
    lr_step_epochs: int = 200
    lr_gamma: float = 0.1


@dataclass(frozen=True)
class PixelParams:
    """Pixel-space baseline: a small conditional 2-D U-Net DDPM."""
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2.0e-4


@dataclass(frozen=True)
class SampleParams:
    """How many variations each test exemplar gets, and with which sampler."""
    per_exemplar: int = 20
    sampler: Literal["ddpm", "ddim"] = "ddpm"
    ddim_steps: int = 50
    guidance_scale: float = 1.0
    pixel_sampler: Literal["ddpm", "ddim"] = "ddim"
    batch_size: int = 4096


@dataclass(frozen=True)
class ScoreParams:
    """Recognizability tasks and originality distances (SPEC §4)."""
    ways: int = 20
    tasks_per_category: int = 100


@dataclass(frozen=True)
class StudyParams:
    fit_degree: int = 2
    grid_exemplars: int = 10  # exemplars shown in the sample grids (Fig. 3)


@dataclass(frozen=True)
class ImportanceParams:
    """Feature importance maps, Eq. 9 (SPEC §6)."""
    categories: int = 25
    variations: int = 10
    sampler: Literal["ddpm", "ddim"] = "ddim"
    steps: int = 100
    exclude: list[str] = field(default_factory=lambda: ["vq"])
    weighting: Literal["score", "epsilon"] = "score"
    reference_maps: str = ""  # Parquet of human maps; empty: ink-frequency proxy


@dataclass(frozen=True)
class StatsParams:
    bootstrap: int = 1000


@dataclass(frozen=True)
class Params:
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    threads: int | Literal["auto"] = "auto"
    # The model under study: always part of the study, so that
    # `dvc exp run -S beta=500` trains just that model.
    regularizer: str = "proto"
    beta: float = 1.0
    # The study grid: one model per entry, "<regularizer>-<beta>", mixes joined
    # with "+" ("proto-5+barlow-50"), and "none" for the unregularized RAE.
    grid: list[str] = field(default_factory=lambda: ["none"])
    prepare: PrepareParams = field(default_factory=PrepareParams)
    exemplars: ExemplarParams = field(default_factory=ExemplarParams)
    critics: CriticParams = field(default_factory=CriticParams)
    rae: RaeParams = field(default_factory=RaeParams)
    ldm: LdmParams = field(default_factory=LdmParams)
    pixel: PixelParams = field(default_factory=PixelParams)
    sample: SampleParams = field(default_factory=SampleParams)
    score: ScoreParams = field(default_factory=ScoreParams)
    study: StudyParams = field(default_factory=StudyParams)
    importance: ImportanceParams = field(default_factory=ImportanceParams)
    stats: StatsParams = field(default_factory=StatsParams)

    @property
    def focus(self) -> str:
        """Name of the model under study, as the grid would write it."""
        from latentsketch.grid import model_name

        return model_name(self.regularizer, self.beta)


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a params file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"params file {path}: not found; run from the project root or "
                         "pass --params with the path of a params file.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(f"params file {path}: not valid YAML ({error}); fix the syntax.")
    params = from_dict(Params, data, where=str(path))
    from latentsketch.grid import study_models  # validates every model name

    study_models(params)
    return params


def to_dict(params: Params) -> dict[str, Any]:
    return dataclasses.asdict(params)


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys and bad types."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}; "
                         "fix the params file.")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"{where}: unknown params key {key!r}{hint}; known keys: "
                             f"{', '.join(known)}.")
        kwargs[key] = _check(hints[key], value, f"{where}:{key}")
    return cls(**kwargs)


def _check(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of {list(args)}; pick one.")
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _check(option, value, where)
            except InputError:
                continue
        raise InputError(f"{where}: {value!r} does not fit {hint}; fix the value.")
    if origin is list:
        if not isinstance(value, list):
            raise InputError(f"{where}: expected a list, got {value!r}.")
        return [_check(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}.")
        return value
    return _check_scalar(hint, value, where)


def _check_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise InputError(f"{where}: expected an integer, got {value!r}.")
    if not isinstance(value, hint):
        raise InputError(f"{where}: expected {hint.__name__}, got {value!r} "
                         f"({type(value).__name__}); fix the value.")
    return value
