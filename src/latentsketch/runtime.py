"""Where and how a stage runs: device, precision, threads, seed, logging.

Every stage calls `setup(params)` first, so that one seed and one device choice
drive all the randomness and all the tensors of the run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from latentsketch.errors import InputError

log = logging.getLogger("latentsketch")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32" or "bf16", already resolved from "auto"
    seed: int

    def autocast(self):
        """bf16 autocast for the forward pass when chosen; a no-op in fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A generator on this device seeded from the run's seed (plus an offset)."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.seed + offset)
        return gen


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("params device: 'cuda' was asked for but PyTorch sees no CUDA "
                         "device; set device: auto (or cpu), or install a CUDA build.")
    if name not in ("cpu", "cuda"):
        raise InputError(f"params device: unknown value {name!r}; use auto, cpu or cuda.")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def resolve_precision(name: str, device: torch.device) -> str:
    if name == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if name == "bf16" and not bf16_supported(device):
        raise InputError(f"params precision: bf16 was asked for but this {device.type} "
                         "has no bf16 support; set precision: auto or fp32.")
    if name not in ("fp32", "bf16"):
        raise InputError(f"params precision: unknown value {name!r}; use auto, fp32 or bf16.")
    return name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int | str) -> int:
    count = (os.cpu_count() or 1) if threads == "auto" else int(threads)
    torch.set_num_threads(max(1, count))
    return count


def setup_logging(level: int = logging.INFO) -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s",
                                               datefmt="%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(level)


def setup(params, stage: str) -> Runtime:
    """Configure logging, threads, seed, device and precision for one stage."""
    setup_logging()
    threads = set_threads(params.threads)
    seed_everything(params.seed)
    device = resolve_device(params.device)
    precision = resolve_precision(params.precision, device)
    if params.precision == "auto":
        log.info("%s: precision auto -> %s on %s", stage, precision, device.type)
    log.info("%s: device %s, precision %s, %d threads, seed %d",
             stage, device, precision, threads, params.seed)
    return Runtime(device=device, precision=precision, seed=params.seed)


def run_stage(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's main; bad input ends it with one clear line and exit code 2."""
    setup_logging()
    try:
        main(None)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
