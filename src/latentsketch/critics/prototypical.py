"""The recognizability critic: a prototypical network trained on one-shot episodes.

Each episode draws `ways` training categories, one support drawing and
`queries` query drawings of each. With one support, a category's prototype
is its support's embedding, so the critic learns a metric space in which a
drawing lies closer to another drawing of its category than to drawings of
the others: exactly the judgement it makes at scoring time, with the test
exemplar as the support.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F
from tqdm import tqdm

from latentsketch.critics import binarize, data_digest
from latentsketch.critics.networks import Critic
from latentsketch.errors import InputError
from latentsketch.runtime import Runtime
from latentsketch.training import fit

Monitor = Callable[[Critic], dict[str, float]]


def category_members(labels: torch.Tensor, min_count: int) -> list[torch.Tensor]:
    """Indices of each category's drawings, for categories with at least `min_count`."""
    order = torch.argsort(labels, stable=True)
    _, counts = torch.unique_consecutive(labels[order], return_counts=True)
    members = torch.split(order, counts.tolist())
    return [idx for idx in members if len(idx) >= min_count]


def sample_episode(members: list[torch.Tensor], ways: int, queries: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Drawing indices of one episode: supports (ways,), queries (ways·queries,).

    Queries are grouped by category in the supports' order; `members` live on
    the generator's device.
    """
    device = generator.device
    chosen = torch.randperm(len(members), generator=generator, device=device)[:ways]
    picks = []
    for category in chosen.tolist():
        idx = members[category]
        order = torch.randperm(len(idx), generator=generator, device=device)
        picks.append(idx[order[:1 + queries]])
    picks = torch.stack(picks)
    return picks[:, 0], picks[:, 1:].reshape(-1)


def prototypical_loss(supports: torch.Tensor, queries: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over −‖f(query) − f(support)‖², and the episode's accuracy.

    `queries` is grouped by category in the supports' order (Snell et al. 2017).
    """
    ways = len(supports)
    logits = -torch.cdist(queries.float(), supports.float()).pow(2)
    per_category = len(queries) // ways
    targets = torch.arange(ways, device=supports.device).repeat_interleave(per_category)
    loss = F.cross_entropy(logits, targets)
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return loss, accuracy


def train_recognizability_critic(images: torch.Tensor, labels: torch.Tensor, *, params,
                                 runtime: Runtime, checkpoint: str | Path,
                                 monitor: Monitor | None = None
                                 ) -> tuple[Critic, list[dict[str, float]]]:
    """Train the prototypical critic on training drawings.

    images: N×1×48×48 in [0, 1] (binarized here); labels: N category indices;
    params: the `critics` section. `monitor(critic)`, if given, runs after each
    epoch with the critic in eval mode and its figures join the epoch's log.
    Returns the critic (eval mode) and its history.
    """
    ink = binarize(images, params.binarize_threshold).to(runtime.device, torch.uint8)
    members = category_members(labels.cpu(), min_count=1 + params.proto_queries)
    members = [idx.to(runtime.device) for idx in members]
    ways = params.proto_ways
    if len(members) < ways:
        raise InputError(f"critics.proto_ways = {ways}: only {len(members)} training "
                         f"categories have {1 + params.proto_queries} drawings or more; "
                         "lower proto_ways or proto_queries.")
    critic = Critic(params.trunk, "metric", params.channels).to(runtime.device)
    optimizer = torch.optim.Adam(critic.parameters(), lr=params.lr)
    generator = runtime.generator(offset=1)
    per_epoch = params.proto_episodes_per_epoch
    epochs = math.ceil(params.proto_episodes / per_epoch)

    def run_epoch(epoch: int) -> dict[str, float]:
        critic.train()
        totals = torch.zeros(2)
        for _ in tqdm(range(per_epoch), desc=f"proto epoch {epoch}", leave=False,
                      disable=None):
            support_idx, query_idx = sample_episode(members, ways, params.proto_queries,
                                                    generator)
            batch = ink[torch.cat([support_idx, query_idx])].float()
            with runtime.autocast():
                embeddings = critic(batch)
            loss, accuracy = prototypical_loss(embeddings[:ways], embeddings[ways:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += torch.stack([loss.detach(), accuracy]).cpu()
        loss, accuracy = (totals / per_epoch).tolist()
        figures = {"loss": loss, "accuracy": accuracy}
        if monitor is not None:
            figures.update(monitor(critic.eval()))
        return figures

    config = {"critic": critic.config, "params": dataclasses.asdict(params),
              "seed": runtime.seed, "data": data_digest(ink, labels)}
    history = fit(name="recognizability critic", epochs=epochs, run_epoch=run_epoch,
                  checkpoint=checkpoint, config=config, modules={"critic": critic},
                  optimizers={"adam": optimizer}, generators={"episodes": generator})
    return critic.eval(), history
