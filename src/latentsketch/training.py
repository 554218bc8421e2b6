"""A resumable epoch loop shared by every training stage.

The loop checkpoints after every epoch (modules, optimizers, schedulers, the
loss history and every random generator) to a file outside DVC's outputs, so a
killed stage resumes where it stopped when it is run again. A checkpoint made
under other settings (its fingerprint differs) is ignored, never resumed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from latentsketch.io import atomic_path

log = logging.getLogger("latentsketch")

CHECKPOINT_ROOT = Path("checkpoints")


def fingerprint(config: dict[str, Any]) -> str:
    """A short stable hash of a training configuration and of the code that runs it.

    The code counts because DVC reruns a stage when its code changes: resuming a
    checkpoint of the old code would then quietly hand back the old model.
    """
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob + _code_digest()).hexdigest()[:16]


def _code_digest() -> bytes:
    """Hash of the latentsketch package sources and of the running stage script."""
    package = Path(__file__).resolve().parent
    sources = sorted(package.rglob("*.py"))
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if script:
        sources.append(Path(script))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    return digest.digest()


def _rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    state["generators"] = {name: gen.get_state() for name, gen in generators.items()}
    return state


def _set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in generators.items():
        gen.set_state(state["generators"][name])


def fit(*, name: str, epochs: int, run_epoch: Callable[[int], dict[str, float]],
        checkpoint: str | Path, config: dict[str, Any],
        modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any] | None = None,
        generators: dict[str, torch.Generator] | None = None) -> list[dict[str, float]]:
    """Run `run_epoch(epoch)` for epochs 1..`epochs`, resuming from `checkpoint`.

    `run_epoch` trains one epoch and returns its logged figures (loss terms);
    the history of those dicts, one per epoch with an `epoch` key, is returned.
    """
    schedulers, generators = schedulers or {}, generators or {}
    checkpoint, tag = Path(checkpoint), fingerprint(config)
    history, start = _resume(checkpoint, tag, modules, optimizers, schedulers, generators)
    if start > 1:
        log.info("%s: resumed from %s at epoch %d/%d", name, checkpoint, start - 1, epochs)
    for epoch in range(start, epochs + 1):
        began = time.perf_counter()
        figures = run_epoch(epoch)
        for scheduler in schedulers.values():
            scheduler.step()
        history.append({"epoch": epoch, **{k: float(v) for k, v in figures.items()}})
        shown = " ".join(f"{k} {v:.4g}" for k, v in figures.items())
        log.info("%s: epoch %d/%d %s (%.1fs)", name, epoch, epochs, shown,
                 time.perf_counter() - began)
        _save(checkpoint, tag, epoch, history, modules, optimizers, schedulers, generators)
    return history


def _save(path, tag, epoch, history, modules, optimizers, schedulers, generators) -> None:
    state = {"fingerprint": tag, "epoch": epoch, "history": history,
             "modules": {k: m.state_dict() for k, m in modules.items()},
             "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
             "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
             "rng": _rng_state(generators)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path, tag, modules, optimizers, schedulers, generators):
    if not path.exists():
        return [], 1
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != tag:
        log.info("checkpoint %s was made with other settings; starting afresh", path)
        return [], 1
    for key, module in modules.items():
        module.load_state_dict(state["modules"][key])
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][key])
    for key, scheduler in schedulers.items():
        scheduler.load_state_dict(state["schedulers"][key])
    _set_rng_state(state["rng"], generators)
    return state["history"], state["epoch"] + 1
