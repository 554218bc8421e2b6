"""The originality critic: a SimCLR encoder trained on the training drawings.

Two augmented views of every drawing go through the same trunk and
projection; NT-Xent (τ = 0.5) pulls the two views of a drawing together and
pushes the other drawings' views away. Originality is later measured on the
256-d trunk features, below the projection, as in SimCLR's own evaluations.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from latentsketch.critics import binarize, data_digest
from latentsketch.critics.networks import Critic
from latentsketch.errors import InputError
from latentsketch.regularizers.simclr import nt_xent
from latentsketch.runtime import Runtime
from latentsketch.training import fit

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def positive_accuracy(view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
    """How often a view's most similar other view is its own drawing's other view."""
    features = torch.nn.functional.normalize(torch.cat([view_a, view_b]).float(), dim=1)
    similarity = features @ features.T
    similarity.fill_diagonal_(float("-inf"))
    positives = torch.arange(len(features), device=features.device).roll(len(view_a))
    return (similarity.argmax(dim=1) == positives).float().mean()


def train_originality_critic(images: torch.Tensor, *, params, runtime: Runtime,
                             checkpoint: str | Path, augment: Augment | None = None
                             ) -> tuple[Critic, list[dict[str, float]]]:
    """Train the SimCLR critic on training drawings (N×1×48×48 in [0, 1]).

    `augment(images, generator)` draws one view per image; the default is the
    paper's augmentations (`latentsketch.augment.augment_batch`). Views are
    binarized again after augmentation, since resampling greys the strokes' edges.
    """
    if augment is None:
        from latentsketch.augment import augment_batch as augment
    threshold = params.binarize_threshold
    ink = binarize(images, threshold).to(runtime.device, torch.uint8)
    batch_size = min(params.simclr_batch_size, len(ink))
    if batch_size < 2:
        raise InputError(f"originality critic: {len(ink)} training drawing(s); SimCLR "
                         "needs at least 2 to contrast. Check the prepared data's split.")
    critic = Critic(params.trunk, "projection", params.channels).to(runtime.device)
    optimizer = torch.optim.Adam(critic.parameters(), lr=params.lr)
    generator = runtime.generator(offset=2)

    def run_epoch(epoch: int) -> dict[str, float]:
        critic.train()
        order = torch.randperm(len(ink), generator=generator, device=runtime.device)
        batches = order[:len(order) // batch_size * batch_size].view(-1, batch_size)
        totals = torch.zeros(2)
        for batch in tqdm(batches, f"simclr epoch {epoch}", leave=False, disable=None):
            drawings = ink[batch].float()
            views = torch.cat([binarize(augment(drawings, generator), threshold),
                               binarize(augment(drawings, generator), threshold)])
            with runtime.autocast():
                projections = critic(views).float()
            view_a, view_b = projections.chunk(2)
            loss = nt_xent(view_a, view_b, params.simclr_temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            accuracy = positive_accuracy(view_a.detach(), view_b.detach())
            totals += torch.stack([loss.detach(), accuracy]).cpu()
        loss, accuracy = (totals / len(batches)).tolist()
        return {"loss": loss, "accuracy": accuracy}

    config = {"critic": critic.config, "params": dataclasses.asdict(params),
              "seed": runtime.seed, "data": data_digest(ink)}
    history = fit(name="originality critic", epochs=params.simclr_epochs,
                  run_epoch=run_epoch, checkpoint=checkpoint, config=config,
                  modules={"critic": critic}, optimizers={"adam": optimizer},
                  generators={"views": generator})
    return critic.eval(), history
