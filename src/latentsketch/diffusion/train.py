"""Training a denoiser on (variation, exemplar) pairs with the resumable loop."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentsketch.diffusion.loss import diffusion_loss
from latentsketch.diffusion.schedule import NoiseSchedule
from latentsketch.errors import InputError
from latentsketch.runtime import Runtime
from latentsketch.training import fit


def train_denoiser(denoiser: nn.Module, schedule: NoiseSchedule, variations: torch.Tensor,
                   exemplars: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
                   lr_step_epochs: int, lr_gamma: float, cond_drop_prob: float,
                   runtime: Runtime, name: str, checkpoint: str | Path,
                   config: dict[str, Any]) -> list[dict[str, float]]:
    """AdamW on Eq. 6 for `epochs`, lr × `lr_gamma` every `lr_step_epochs` (0: never).

    `variations` and `exemplars` are normalized, row-aligned tensors on the
    runtime's device: row i is a training drawing and its category's exemplar.
    Returns the per-epoch history (epoch, loss, lr); resumes from `checkpoint`
    when it was made under the same `config`.
    """
    if len(variations) == 0:
        raise InputError(f"{name}: no training rows; check that the prepared data has a "
                         "train split and that the encode stage ran.")
    denoiser.to(runtime.device).train()
    # the fused kernel (CPU and CUDA) saves about a fifth of a small model's step
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=lr,
                                  fused=runtime.device.type in ("cpu", "cuda"))
    schedulers = {}
    if lr_step_epochs > 0:
        schedulers["lr"] = torch.optim.lr_scheduler.StepLR(optimizer, lr_step_epochs,
                                                           gamma=lr_gamma)
    generator = runtime.generator(offset=1)
    batches_per_epoch = max(1, len(variations) // batch_size)

    def run_epoch(epoch: int) -> dict[str, float]:
        order = torch.randperm(len(variations), generator=generator, device=runtime.device)
        total = torch.zeros((), device=runtime.device)
        # whole batches only: a last tiny batch would weigh as much as a full one
        for index in order[:batches_per_epoch * batch_size].split(batch_size):
            loss = diffusion_loss(denoiser, schedule, variations[index], exemplars[index],
                                  cond_drop_prob=cond_drop_prob, generator=generator,
                                  autocast=runtime.autocast)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        return {"loss": total.item() / batches_per_epoch,
                "lr": optimizer.param_groups[0]["lr"]}

    # a checkpoint of another architecture (same params, changed code) must not resume
    shapes = {key: list(value.shape) for key, value in denoiser.state_dict().items()}
    return fit(name=name, epochs=epochs, run_epoch=run_epoch, checkpoint=checkpoint,
               config={**config, "state_shapes": shapes}, modules={"denoiser": denoiser},
               optimizers={"optimizer": optimizer}, schedulers=schedulers,
               generators={"train": generator})
