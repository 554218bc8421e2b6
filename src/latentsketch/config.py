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
    # Empty: every file of the format in a mirror folder, or the 345 official
    # categories when downloading.
    categories: list[str] = field(default_factory=list)
    max_drawings_per_category: int = 3000  # the first ones of each file
    recognized_only: bool = True  # stroke formats: skip drawings the game did not guess
    line_width: float = 2.0  # pixels at 48×48, for stroke formats
    margin: float = 2.0  # blank pixels kept around a rendered drawing
    feature_sigma: float = 2.0  # Gaussian blur (pixels) of the clustering features
    clusters_per_category: int = 8
    n_per_class: int = 200
    # Mean cosine similarity of a kept cluster's drawings to their centroid, in the
    # clustering feature space; clusters below it are dropped.
    min_cohesion: float = 0.0
    # At most this many categories, the most cohesive clusters spread over the
    # source categories (every source's best before any second); 0: keep all.
    max_categories: int = 0
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
    cache: str = "~/.cache/latentsketch"  # where downloaded files are kept
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
    channels: int = 32  # conv-4 width (paper scale: 64); the ResNet's first stage
    binarize_threshold: float = 0.3
    proto_episodes: int = 100
    proto_episodes_per_epoch: int = 20  # one log line and one checkpoint per block
    proto_ways: int = 20
    proto_queries: int = 5
    simclr_epochs: int = 2
    simclr_batch_size: int = 128
    simclr_temperature: float = 0.5
    lr: float = 1.0e-3


@dataclass(frozen=True)
class RaeParams:
    """Regularized autoencoder of the paper's Table 1 and its training."""
    latent_dim: int = 64  # the paper: 64 on Omniglot, 128 on QuickDraw-FS
    # CPU default: a few epochs at a 10× larger lr than the paper's 1e-4, so that
    # one model trains in about a minute on 2 cores (paper: 300 / 200 epochs).
    epochs: int = 6
    batch_size: int = 128
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-5
    lr_step_epochs: int = 0  # 0: constant lr; the paper: 70 on Omniglot
    lr_gamma: float = 0.25  # lr factor every lr_step_epochs (the paper: ÷4)
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
    # MLP U-Net widths, widest first (the paper's Table 2: 2048, 1024, 512, 256)
    widths: list[int] = field(default_factory=lambda: [256, 128])
    time_dim: int = 64
    attention: bool = False
    cond_drop_prob: float = 0.1  # classifier-free guidance: P(exemplar -> null)
    epochs: int = 20  # CPU-sized, with a 10× larger lr (paper: 1000 epochs at 1e-4)
    batch_size: int = 128
    lr: float = 1.0e-3
    lr_step_epochs: int = 15  # lr × lr_gamma every this many epochs (0: never)
    lr_gamma: float = 0.1


@dataclass(frozen=True)
class PixelParams:
    """Pixel-space baseline: a small conditional 2-D U-Net DDPM."""
    channels: list[int] = field(default_factory=lambda: [8, 16, 32])  # per level, 48 px first
    time_dim: int = 32
    epochs: int = 6  # CPU-sized: a weak baseline; paper-scale files train far longer
    batch_size: int = 64
    lr: float = 2.0e-3


@dataclass(frozen=True)
class SampleParams:
    """How many variations each test exemplar gets, and with which sampler."""
    per_exemplar: int = 20
    # ddpm: the paper's ancestral chain over all T steps; ddim: ddim_steps of them
    sampler: Literal["ddpm", "ddim"] = "ddim"
    ddim_steps: int = 50
    # DDIM's η: 0 is deterministic; 1 is ancestral sampling on the shortened chain,
    # whose samples matched DDPM-1000's spread here while η = 0 overshot under guidance
    ddim_eta: float = 1.0
    guidance_scale: float = 1.0  # γ of Eq. 8
    pixel_sampler: Literal["ddpm", "ddim"] = "ddim"
    pixel_ddim_steps: int = 20  # a pixel U-Net step costs ~100× a latent one on a CPU
    batch_size: int = 4096  # latent chains run side by side (×2 with guidance)
    # images per pass of a conv net (pixel chains, RAE decoding): on a CPU, batches
    # past ~100 images spend more time faulting in fresh memory than computing
    image_batch_size: int = 64


@dataclass(frozen=True)
class ScoreParams:
    """Recognizability tasks and originality distances (SPEC §4)."""
    ways: int = 20
    tasks_per_category: int = 100


@dataclass(frozen=True)
class StudyParams:
    """Fig. 2 fits, best model per regularizer, Fig. 3 sample grids (SPEC §5)."""
    fit_degree: int = 2  # polynomial degree of originality(β), recognizability(β)
    grid_exemplars: int = 10  # exemplars shown in the sample grids (Fig. 3)
    grid_samples: int = 8  # samples beside each exemplar in a per-family grid


@dataclass(frozen=True)
class ImportanceParams:
    """Feature importance maps, Eq. 9 (SPEC §6)."""
    categories: int = 25
    variations: int = 10
    sampler: Literal["ddpm", "ddim"] = "ddim"
    steps: int = 10  # DDIM steps; ddpm always runs all T
    exclude: list[str] = field(default_factory=lambda: ["vq"])
    weighting: Literal["score", "epsilon"] = "score"
    reference_maps: str = ""  # Parquet of human maps; empty: ink-frequency proxy
    guidance_scale: float = 1.0  # γ of Eq. 8, as used for sampling
    overlay_categories: int = 10  # columns of maps/overlays.png


@dataclass(frozen=True)
class StatsParams:
    """Spearman ρ, Wilcoxon tests and human split-half consistency (SPEC §6)."""
    bootstrap: int = 1000  # random participant splits for the human consistency


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
