"""Train one regularized autoencoder on the training split.

    python stages/train_rae.py <model> [--dir models/<model>] [--params params.yaml]

Reads data/prepared/drawings.parquet (and data/exemplars for proto), trains
with Adam for rae.epochs (checkpointing every epoch under checkpoints/rae/, so
a killed run resumes), and writes models/<key>/rae/rae.safetensors, a
reconstruction figure beside it, and the per-epoch loss terms to
logs/rae/<key>.csv.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from latentsketch import paths
from latentsketch.data.tables import Drawings, load_drawings, load_exemplars
from latentsketch.errors import InputError
from latentsketch.io import (images_to_tensor, save_figure, save_weights, tensor_to_images,
                             write_csv)
from latentsketch.models.rae import (RAE, WEIGHTS_FILE, RaeConfig, initialize_codebook,
                                     training_loss)
from latentsketch.regularizers import needs_exemplars
from latentsketch.grid import HUMAN, PIXEL
from latentsketch.runtime import Runtime, run_stage, setup
from latentsketch.stage import ModelStage, parse_model_stage
from latentsketch.training import fit

log = logging.getLogger("latentsketch")

SHOWN_RECONSTRUCTIONS = 16
RECONSTRUCTIONS_FILE = "reconstructions.png"


def main(argv: list[str] | None) -> None:
    stage = parse_model_stage(argv, "Train one regularized autoencoder (RAE).",
                              refuse=(PIXEL, HUMAN))
    runtime = setup(stage.params, f"train_rae {stage.key}")
    drawings = load_drawings(paths.PREPARED)
    train = drawings.split("train")
    if len(train.table) == 0:
        raise InputError(f"prepared drawings {paths.PREPARED}: no 'train' rows; rerun the "
                         "prepare stage with a split that keeps training categories.")
    categories = sorted(train.table["category"].unique())
    rae = RAE(rae_config(stage, len(categories))).to(runtime.device)
    exemplar_images = None
    if needs_exemplars(rae.regularizers):
        exemplar_images = exemplars_by_category(categories, runtime.device)
    remove_stale_temporaries(stage)
    history = train_rae(stage, runtime, rae, train, categories, exemplar_images)
    shown = drawings.split("test") if (drawings.table["split"] == "test").any() else train
    write_artifacts(stage, rae, history, shown, categories, runtime)


def remove_stale_temporaries(stage: ModelStage) -> None:
    """Delete half-written files a killed run of this model left beside its outputs."""
    rae_dir = paths.rae_dir(stage.dir)
    targets = [paths.checkpoint("rae", stage.key), paths.log_csv("rae", stage.key),
               rae_dir / WEIGHTS_FILE, rae_dir / RECONSTRUCTIONS_FILE]
    for target in targets:
        for stale in target.parent.glob(f".{target.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def rae_config(stage: ModelStage, n_classes: int) -> RaeConfig:
    p = stage.params.rae
    return RaeConfig(latent_dim=p.latent_dim, betas=stage.spec.betas, n_classes=n_classes,
                     vq_codebook_size=p.vq_codebook_size, vq_subvector_dim=p.vq_subvector_dim,
                     proto_projector_width=p.proto_projector_width,
                     contrastive_probe_dim=p.contrastive_probe_dim,
                     simclr_temperature=p.simclr_temperature, barlow_lambda=p.barlow_lambda)


def exemplars_by_category(categories: list[str], device: torch.device) -> torch.Tensor:
    """The exemplar image of every training category, in `categories` order."""
    exemplars = load_exemplars(paths.EXEMPLARS)
    row_of = {c: i for i, c in enumerate(exemplars.table["category"])}
    missing = [c for c in categories if c not in row_of]
    if missing:
        raise InputError(f"exemplars {paths.EXEMPLARS}: no exemplar for {len(missing)} "
                         f"training categories (e.g. {missing[0]!r}); rerun the exemplars "
                         "stage on the current prepared data.")
    rows = np.array([row_of[c] for c in categories])
    return images_to_tensor(exemplars.images[rows], device)


def train_rae(stage: ModelStage, runtime: Runtime, rae: RAE, train: Drawings,
              categories: list[str], exemplar_images: torch.Tensor | None) -> list[dict]:
    p = stage.params.rae
    # uint8 on the device (a quarter of float32), converted batch by batch.
    pages = torch.from_numpy(train.images).to(runtime.device)
    label_of = {c: i for i, c in enumerate(categories)}
    labels = torch.tensor(train.table["category"].map(label_of).to_numpy(),
                          device=runtime.device)
    optimizer = torch.optim.Adam(rae.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    schedulers = ({"lr": torch.optim.lr_scheduler.StepLR(optimizer, p.lr_step_epochs,
                                                         gamma=p.lr_gamma)}
                  if p.lr_step_epochs > 0 else {})
    generator = runtime.generator(offset=1)
    if rae.quantizer is not None:  # a resumed run replaces this start by its checkpoint
        first = batch_indices(len(pages), p.batch_size, generator)[0]
        initialize_codebook(rae, pages[first].unsqueeze(1).float() / 255.0, generator)

    def run_epoch(epoch: int) -> dict[str, float]:
        rae.train()
        sums: dict[str, float] = {}
        batches = batch_indices(len(pages), p.batch_size, generator)
        for index in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=None):
            images = pages[index].unsqueeze(1).float() / 255.0
            total, terms = training_loss(rae, images, labels[index], generator,
                                         exemplar_images, runtime.autocast)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            for name, value in {"loss": total, **terms}.items():
                sums[name] = sums.get(name, 0.0) + value.item()
        figures = {name: value / len(batches) for name, value in sums.items()}
        return {**figures, "lr": optimizer.param_groups[0]["lr"]}

    fingerprint = {"rae": asdict(p), "betas": stage.spec.betas, "seed": runtime.seed,
                   "precision": runtime.precision, "device": runtime.device.type,
                   "n_train": len(pages), "n_classes": len(categories)}
    return fit(name=f"train_rae {stage.key}", epochs=p.epochs, run_epoch=run_epoch,
               checkpoint=paths.checkpoint("rae", stage.key), config=fingerprint,
               modules={"rae": rae}, optimizers={"adam": optimizer}, schedulers=schedulers,
               generators={"batches": generator})


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A seeded shuffle cut into batches; a last short batch is dropped (BatchNorm
    and the contrastive terms need full batches) unless it is the only one."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def write_artifacts(stage: ModelStage, rae: RAE, history: list[dict], shown: Drawings,
                    categories: list[str], runtime: Runtime) -> None:
    rae_dir = paths.rae_dir(stage.dir)
    write_csv(paths.log_csv("rae", stage.key), pd.DataFrame(history))
    config = {**rae.config.to_dict(), "model": stage.spec.name, "image_size": 48,
              "categories": categories}
    save_weights(rae_dir / WEIGHTS_FILE, rae.state_dict(), config)
    save_reconstructions(rae_dir / RECONSTRUCTIONS_FILE, rae, shown, runtime)
    log.info("train_rae %s: wrote %s (reconstruction %.1f after %d epochs)", stage.key,
             rae_dir, history[-1]["reconstruction"], history[-1]["epoch"])


@torch.no_grad()
def save_reconstructions(path: Path, rae: RAE, shown: Drawings, runtime: Runtime) -> None:
    """One drawing per category (up to 16; test drawings when there are any): inputs
    above their reconstructions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = ~shown.table["category"].duplicated().to_numpy()
    inputs = images_to_tensor(shown.images[first][:SHOWN_RECONSTRUCTIONS], runtime.device)
    rae.eval()
    with runtime.autocast():
        outputs = rae.decode(rae.encode(inputs, runtime.generator(offset=3)))
    rows = [tensor_to_images(inputs), tensor_to_images(outputs)]
    figure, axes = plt.subplots(2, max(len(inputs), 1), squeeze=False,
                                figsize=(max(len(inputs), 1) * 0.8, 1.9))
    for row, images in enumerate(rows):
        for column, axis in enumerate(axes[row]):
            if column < len(images):
                axis.imshow(images[column], cmap="gray_r", vmin=0, vmax=255)
            axis.axis("off")
    figure.suptitle(f"{path.parent.parent.name}: drawings (top), reconstructions (bottom)",
                    fontsize=8)
    save_figure(path, figure)


if __name__ == "__main__":
    run_stage(main)
