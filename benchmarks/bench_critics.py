"""How fast does the recognizability critic learn? Accuracy against CPU time.

Trains the prototypical critic on the training categories of a prepared
drawings table and, after every block of episodes, measures its one-shot
accuracy on the human test drawings with each category's exemplar as the
support (the `score.py human` recognizability, on `--ways`-way tasks).

    python benchmarks/bench_critics.py /tmp/omni-full/drawings.parquet \
        --exemplars /tmp/omni-full/exemplars.parquet --cpu-minutes 30

Without --exemplars the exemplars are the blurred-pixel medoids, computed here.
Logs one line per block: training loss and accuracy, test accuracy, elapsed
wall seconds and process CPU seconds. The budget is CPU time, so that a busy
machine does not shorten the training; with one thread (the default) CPU
seconds are what an idle core would take.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from torchvision.transforms.functional import gaussian_blur

from latentsketch.config import CriticParams
from latentsketch.critics.prototypical import train_recognizability_critic
from latentsketch.data.tables import load_drawings, load_exemplars
from latentsketch.io import images_to_tensor
from latentsketch.runtime import Runtime, resolve_device, set_threads, setup_logging
from latentsketch.scores import recognizability, recognizability_tasks


class BudgetReached(Exception):
    """The CPU budget is spent or the target accuracy is reached."""


def medoids(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Index of each category's medoid in blurred-pixel space (σ = 2)."""
    blurred = gaussian_blur(images, kernel_size=13, sigma=2.0).flatten(1)
    chosen = []
    for category in range(int(labels.max()) + 1):
        members = (labels == category).nonzero().flatten()
        features = blurred[members]
        chosen.append(members[torch.cdist(features, features).mean(dim=1).argmin()])
    return torch.stack(chosen)


def test_set(drawings, exemplars_path: str | None):
    """(exemplar images, query images, query labels) of the test categories."""
    test = drawings.split("test")
    names = sorted(test.table["category"].unique())
    labels = torch.tensor(test.table["category"].map(names.index).to_numpy())
    images = images_to_tensor(test.images)
    if exemplars_path:
        exemplars = load_exemplars(exemplars_path).split("test")
        exemplar_ids = set(exemplars.table["drawing_id"])
        is_exemplar = torch.tensor(test.table["drawing_id"].isin(exemplar_ids).to_numpy())
        order = exemplars.table["category"].map(names.index).to_numpy().argsort()
        supports = images_to_tensor(exemplars.images[order])
    else:
        chosen = medoids(images, labels)
        is_exemplar = torch.zeros(len(labels), dtype=torch.bool)
        is_exemplar[chosen] = True
        supports = images[chosen]
    return supports, images[~is_exemplar], labels[~is_exemplar]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("drawings", help="prepared drawings.parquet")
    parser.add_argument("--exemplars", help="exemplars.parquet (default: computed here)")
    parser.add_argument("--cpu-minutes", type=float, default=30.0,
                        help="stop once the process has used this much CPU time")
    parser.add_argument("--target", type=float, default=1.0,
                        help="stop once the test accuracy reaches this")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--episodes-per-block", type=int, default=100)
    parser.add_argument("--max-episodes", type=int, default=5000,
                        help="stop here if the CPU budget lasts that long")
    parser.add_argument("--ways", type=int, default=20, help="test tasks' ways")
    parser.add_argument("--tasks-per-category", type=int, default=100)
    parser.add_argument("--proto-ways", type=int, default=60)
    parser.add_argument("--proto-queries", type=int, default=5)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    runtime = Runtime(resolve_device("auto"), "fp32", args.seed)

    drawings = load_drawings(args.drawings)
    train = drawings.split("train")
    train_labels = torch.as_tensor(train.table["category"].astype("category").cat.codes
                                   .to_numpy().astype("int64"))
    supports, queries, query_labels = test_set(drawings, args.exemplars)
    tasks = recognizability_tasks(len(supports), args.ways, args.tasks_per_category,
                                  args.seed)
    params = dataclasses.replace(
        CriticParams(), channels=args.channels, proto_ways=args.proto_ways,
        proto_queries=args.proto_queries, lr=args.lr,
        proto_episodes_per_epoch=args.episodes_per_block, proto_episodes=args.max_episodes)
    began_wall, began_cpu = time.perf_counter(), time.process_time()

    def monitor(critic) -> dict[str, float]:
        accuracy = recognizability(critic, supports, queries, query_labels, tasks).mean()
        figures = {"test_accuracy": float(accuracy),
                   "wall_s": time.perf_counter() - began_wall,
                   "cpu_s": time.process_time() - began_cpu}
        if figures["cpu_s"] > args.cpu_minutes * 60 or accuracy >= args.target:
            raise BudgetReached(figures)
        return figures

    with tempfile.TemporaryDirectory() as scratch:
        try:
            train_recognizability_critic(
                images_to_tensor(train.images), train_labels, params=params,
                runtime=runtime, checkpoint=Path(scratch) / "proto.pt", monitor=monitor)
        except BudgetReached as stop:
            print(f"stopped: {stop.args[0]}")


if __name__ == "__main__":
    main()
