"""Train the two critics of the originality-vs-recognizability framework.

    python stages/train_critics.py [--params params.yaml]

Reads the training split of data/prepared/drawings.parquet (test categories are
never seen), trains the recognizability critic (prototypical network,
episodic) and the originality critic (SimCLR), each checkpointing every epoch
under checkpoints/critics/ so that a killed run resumes, and writes
models/critics/{recognizability,originality}.safetensors (weights with their
config) and the per-epoch loss and accuracy of both to logs/critics.csv.
"""
from __future__ import annotations

import logging

import pandas as pd
import torch

from latentsketch import paths
from latentsketch.critics import weights_path
from latentsketch.critics.networks import Critic
from latentsketch.critics.prototypical import train_recognizability_critic
from latentsketch.critics.simclr import train_originality_critic
from latentsketch.data.tables import load_drawings
from latentsketch.errors import InputError
from latentsketch.io import images_to_tensor, save_weights, write_csv
from latentsketch.runtime import run_stage, setup
from latentsketch.stage import parse_plain_stage

log = logging.getLogger("latentsketch")


def training_log(recognizability: list[dict], originality: list[dict]) -> pd.DataFrame:
    """One row per epoch; each critic's loss and accuracy in its own columns."""
    columns = {}
    for critic, history in (("recognizability", recognizability),
                            ("originality", originality)):
        frame = pd.DataFrame(history).set_index("epoch")[["loss", "accuracy"]]
        columns[critic] = frame.add_prefix(f"{critic}_")
    table = pd.concat(columns.values(), axis=1).sort_index()
    return table.rename_axis("epoch").reset_index()


def save_critic(name: str, critic: Critic, params, dataset: str) -> None:
    config = {**critic.config, "critic": name, "dataset": dataset,
              "binarize_threshold": params.critics.binarize_threshold}
    save_weights(weights_path(name), critic.state_dict(), config)


def main(argv: list[str] | None) -> None:
    params = parse_plain_stage(argv, "Train the recognizability and originality critics.")
    runtime = setup(params, "train_critics")
    train = load_drawings().split("train")
    if len(train.table) == 0:
        raise InputError(f"prepared drawings {paths.PREPARED}: no training drawings; "
                         "check prepare.test_characters and rerun `dvc repro prepare`.")
    codes, categories = pd.factorize(train.table["category"], sort=True)
    labels = torch.as_tensor(codes, dtype=torch.long)
    images = images_to_tensor(train.images)
    log.info("train_critics: %d training drawings of %d categories", len(labels),
             len(categories))

    recognizer, proto_history = train_recognizability_critic(
        images, labels, params=params.critics, runtime=runtime,
        checkpoint=paths.checkpoint("critics", "recognizability"))
    encoder, simclr_history = train_originality_critic(
        images, params=params.critics, runtime=runtime,
        checkpoint=paths.checkpoint("critics", "originality"))

    dataset = str(train.table["dataset"].iloc[0])
    save_critic("recognizability", recognizer, params, dataset)
    save_critic("originality", encoder, params, dataset)
    write_csv(paths.LOGS / "critics.csv", training_log(proto_history, simclr_history))


if __name__ == "__main__":
    run_stage(main)
