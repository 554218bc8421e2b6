"""Model names of the study grid and what they mean.

A model is named by its regularizer weights: "kl-1e-05", "proto-500", a mix
"proto-5+barlow-50", or "none" (no regularizer). The pixel-space baseline is
"pixel". The name is also the DVC stage key (`train_rae@proto-500`) and the
folder under models/, so it is the one handle users see everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from latentsketch.errors import InputError

REGULARIZERS = ("kl", "vq", "classif", "proto", "simclr", "barlow")
NONE, PIXEL, HUMAN = "none", "pixel", "human"
FOCUS_DIR = "focus"  # models/focus holds the model under study (top-level params)


@dataclass(frozen=True)
class ModelSpec:
    """One latent model of the study: its name and its regularizer weights."""
    name: str
    weights: tuple[tuple[str, float], ...]  # (regularizer, beta) pairs, name order

    @property
    def betas(self) -> dict[str, float]:
        return dict(self.weights)

    @property
    def family(self) -> str:
        """What the study fits one curve to: "proto", "proto+barlow", "none"."""
        return "+".join(reg for reg, _ in self.weights) or NONE

    @property
    def beta(self) -> float:
        """The β the study's fit runs over: the first term's (Fig. 5 varies it)."""
        return self.weights[0][1] if self.weights else 0.0


def format_beta(beta: float) -> str:
    """500.0 -> "500", 1e-05 -> "1e-05", 0.5 -> "0.5" (as YAML/DVC print them)."""
    beta = float(beta)
    return str(int(beta)) if beta.is_integer() and abs(beta) < 1e15 else repr(beta)


def model_name(regularizer: str, beta: float) -> str:
    if regularizer == NONE:
        return NONE
    return f"{regularizer}-{format_beta(beta)}"


def parse_model_name(name: str) -> ModelSpec:
    """Parse a grid entry; raise InputError naming the entry and the fix."""
    name = str(name).strip()
    if name in (NONE, "none-0", "none-0.0"):
        return ModelSpec(NONE, ())
    weights = []
    for term in name.split("+"):
        regularizer, _, beta_text = term.partition("-")
        weights.append((regularizer, _parse_beta(name, regularizer, beta_text)))
    regularizers = [reg for reg, _ in weights]
    if len(set(regularizers)) != len(regularizers):
        raise InputError(f"grid entry {name!r}: a regularizer appears twice; give each "
                         "regularizer one β.")
    canonical = "+".join(f"{reg}-{format_beta(beta)}" for reg, beta in weights)
    return ModelSpec(canonical, tuple(weights))


def _parse_beta(name: str, regularizer: str, text: str) -> float:
    if regularizer not in REGULARIZERS:
        raise InputError(f"grid entry {name!r}: unknown regularizer {regularizer!r}; use "
                         f"one of {', '.join(REGULARIZERS)} or 'none', as '<reg>-<beta>'.")
    try:
        beta = float(text)
    except ValueError:
        raise InputError(f"grid entry {name!r}: β {text!r} of {regularizer} is not a "
                         "number; write entries as '<regularizer>-<beta>', e.g. 'proto-500'.")
    if not math.isfinite(beta) or beta <= 0:
        raise InputError(f"grid entry {name!r}: β of {regularizer} must be a positive "
                         "number; use 'none' for the unregularized model.")
    return beta


def study_models(params) -> list[ModelSpec]:
    """The grid entries plus the model under study, validated, duplicates named."""
    specs = [parse_model_name(entry) for entry in params.grid]
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"params grid: {duplicates} listed twice; keep one of each.")
    if params.regularizer != NONE and params.regularizer not in REGULARIZERS:
        raise InputError(f"params regularizer: unknown {params.regularizer!r}; use one of "
                         f"{', '.join(REGULARIZERS)} or none.")
    focus = parse_model_name(model_name(params.regularizer, params.beta))
    return specs + [focus]


def model_dir(key: str, root: str | Path = "models") -> Path:
    """Folder of one model's artifacts: models/<name>, or models/focus."""
    return Path(root) / key
