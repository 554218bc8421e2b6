"""The critic networks, their episodic and contrastive training, and the stages."""
import dataclasses
import json
import math
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from latentsketch.config import CriticParams
from latentsketch.critics import weights_path
from latentsketch.critics.networks import Critic, load_critic
from latentsketch.critics.prototypical import (category_members, prototypical_loss,
                                               sample_episode, train_recognizability_critic)
from latentsketch.critics.simclr import positive_accuracy, train_originality_critic
from latentsketch.errors import InputError
from latentsketch.io import images_to_column, save_weights
from latentsketch.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
TINY = CriticParams(channels=4, proto_episodes=6, proto_episodes_per_epoch=3, proto_ways=4,
                    proto_queries=2, simclr_epochs=2, simclr_batch_size=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def runtime() -> Runtime:
    return Runtime(device=torch.device("cpu"), precision="fp32", seed=0)


def shape_categories(n_categories: int, per_category: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drawings of one bar per category (its own place and angle), slightly jittered."""
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(n_categories * per_category, 1, 48, 48)
    labels = torch.arange(n_categories).repeat_interleave(per_category)
    for image, category in zip(images, labels.tolist()):
        row = 6 + 5 * category + int(torch.randint(0, 3, (1,), generator=generator))
        if category % 2:
            image[0, 8:40, row:row + 3] = 1.0
        else:
            image[0, row:row + 3, 8:40] = 1.0
    return images, labels


def jitter(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A stand-in augmentation: shift each drawing by up to 2 pixels."""
    shifts = torch.randint(-2, 3, (len(images), 2), generator=generator).tolist()
    return torch.stack([image.roll(tuple(shift), dims=(1, 2))
                        for image, shift in zip(images, shifts)])


# --- networks -----------------------------------------------------------------------

@pytest.mark.parametrize("trunk", ["conv4", "resnet"])
def test_a_critic_has_256_d_features_and_a_128_d_head(trunk):
    critic = Critic(trunk, "projection", channels=8).eval()
    images = torch.zeros(3, 1, 48, 48)
    assert critic.features(images).shape == (3, 256)
    assert critic(images).shape == (3, 128)


def test_a_saved_critic_loads_back_identical(tmp_path):
    critic = Critic("conv4", "metric", channels=4).eval()
    save_weights(tmp_path / "critic.safetensors", critic.state_dict(), critic.config)
    loaded = load_critic(tmp_path / "critic.safetensors")
    images = torch.rand(2, 1, 48, 48)
    assert torch.equal(loaded(images), critic(images))
    assert not loaded.training


# --- prototypical training ----------------------------------------------------------

def test_prototypical_loss_matches_the_hand_computed_value():
    supports = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    queries = torch.tensor([[0.0, 1.0], [2.0, 0.0]])  # one per category, in order
    loss, accuracy = prototypical_loss(supports, queries)
    # query 0: distances² 1 and 5; query 1: 4 and 0.
    expected = (math.log(1 + math.exp(-4)) + math.log(1 + math.exp(-4))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert accuracy.item() == 1.0


def test_an_episode_draws_distinct_categories_and_distinct_drawings():
    labels = torch.arange(10).repeat_interleave(6)
    members = category_members(labels, min_count=4)
    supports, queries = sample_episode(members, ways=5, queries=3,
                                       generator=torch.Generator().manual_seed(0))
    assert len(set(labels[supports].tolist())) == 5
    assert labels[queries].view(5, 3).tolist() == [[c] * 3 for c in labels[supports].tolist()]
    assert len(set(torch.cat([supports, queries]).tolist())) == 20


def test_categories_too_small_for_an_episode_are_left_out():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    assert [m.tolist() for m in category_members(labels, min_count=3)] == [[0, 1, 2],
                                                                             [5, 6, 7]]


def test_the_recognizability_critic_learns_to_tell_categories_apart(tmp_path):
    images, labels = shape_categories(n_categories=6, per_category=8)
    params = dataclasses.replace(TINY, proto_episodes=30, proto_episodes_per_epoch=15)
    critic, history = train_recognizability_critic(images, labels, params=params,
                                                   runtime=runtime(),
                                                   checkpoint=tmp_path / "proto.pt")
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[-1]["accuracy"] > 0.6  # chance is 1/4


def test_a_finished_training_resumes_from_its_checkpoint_without_retraining(tmp_path):
    images, labels = shape_categories(n_categories=6, per_category=8)
    first, _ = train_recognizability_critic(images, labels, params=TINY, runtime=runtime(),
                                            checkpoint=tmp_path / "proto.pt")
    calls = []
    again, history = train_recognizability_critic(
        images, labels, params=TINY, runtime=runtime(), checkpoint=tmp_path / "proto.pt",
        monitor=lambda critic: calls.append(1) or {})
    assert calls == [] and len(history) == 2
    for key, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])


def test_a_checkpoint_made_on_other_drawings_is_not_resumed(tmp_path):
    images, labels = shape_categories(n_categories=6, per_category=8)
    train_recognizability_critic(images, labels, params=TINY, runtime=runtime(),
                                 checkpoint=tmp_path / "proto.pt")
    calls = []
    train_recognizability_critic(images.flip(-1), labels, params=TINY, runtime=runtime(),
                                 checkpoint=tmp_path / "proto.pt",
                                 monitor=lambda critic: calls.append(1) or {})
    assert calls == [1, 1]  # both epochs trained afresh


# --- SimCLR training ----------------------------------------------------------------

def test_positive_accuracy_finds_each_views_twin():
    views = torch.eye(4)
    assert positive_accuracy(views, views).item() == 1.0
    assert positive_accuracy(views, views.roll(1, dims=0)).item() == 0.0


def test_the_originality_critic_trains_on_augmented_views(tmp_path):
    images, _ = shape_categories(n_categories=6, per_category=8)
    critic, history = train_originality_critic(images, params=TINY, runtime=runtime(),
                                               checkpoint=tmp_path / "simclr.pt",
                                               augment=jitter)
    assert len(history) == 2
    assert all(math.isfinite(row["loss"]) for row in history)
    # NT-Xent over 2·16 views starts near log(31) and must not blow up.
    assert history[-1]["loss"] < math.log(31) + 0.5
    assert critic.features(images[:2]).shape == (2, 256)


# --- the stages, end to end ---------------------------------------------------------

def write_project(folder: Path) -> None:
    """A miniature project: params, a prepared table and exemplars of 8 categories."""
    images, labels = shape_categories(n_categories=8, per_category=6)
    categories = [f"Alpha/character{c + 1:02d}" for c in labels.tolist()]
    split = ["test" if c < 4 else "train" for c in labels.tolist()]
    pixels = images_to_column((images.squeeze(1) * 255).to(torch.uint8).numpy())
    table = pd.DataFrame({"drawing_id": np.arange(len(labels)), "dataset": "omniglot",
                          "split": split, "category": categories, "alphabet": "Alpha",
                          "drawer": [f"{i % 6:02d}" for i in range(len(labels))],
                          "pixels": pixels})
    (folder / "data/prepared").mkdir(parents=True)
    (folder / "data/exemplars").mkdir(parents=True)
    table.to_parquet(folder / "data/prepared/drawings.parquet")
    exemplars = table.groupby("category").head(1)[["category", "split", "drawing_id",
                                                   "pixels"]]
    exemplars.to_parquet(folder / "data/exemplars/exemplars.parquet")
    params = (ROOT / "params.yaml").read_text()
    critics = "\n".join(f"  {k}: {v}" for k, v in dataclasses.asdict(TINY).items())
    start = params.index("\ncritics:") + 1
    end = params.index("\n\n", start)
    params = params[:start] + "critics:\n" + critics + params[end:]
    params = params.replace("threads: auto", "threads: 1")
    (folder / "params.yaml").write_text(params.replace("tasks_per_category: 100",
                                                       "tasks_per_category: 10"))


def stage_main(script: str):
    """The `main` of a stage script, run in this process to spare a new interpreter."""
    return runpy.run_path(str(ROOT / "stages" / script), run_name="stage")["main"]


def test_train_critics_then_score_writes_weights_logs_and_metrics(tmp_path,
                                                                         monkeypatch):
    write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    stage_main("train_critics.py")([])
    for name in ("recognizability", "originality"):
        assert (tmp_path / weights_path(name)).exists()
    log = pd.read_csv(tmp_path / "logs/critics.csv")
    assert list(log.columns) == ["epoch", "recognizability_loss", "recognizability_accuracy",
                                 "originality_loss", "originality_accuracy"]

    stage_main("score.py")(["human"])
    metrics = json.loads((tmp_path / "metrics/scores/human.json").read_text())
    assert metrics["model"] == metrics["key"] == metrics["family"] == "human"
    assert metrics["n_samples"] == 4 * 5  # four test categories, exemplars left out
    assert metrics["ways"] == 4  # clamped to the number of test categories
    per_category = pd.read_parquet(tmp_path / "models/human/scores/per_category.parquet")
    assert per_category["category"].tolist() == [f"Alpha/character0{c}" for c in (1, 2, 3, 4)]
    assert 0.0 <= metrics["recognizability"] <= 1.0 and metrics["originality"] > 0

    # A "model" whose samples are copies of its exemplars: recognizable, not original.
    write_samples(tmp_path, copies=3)
    stage_main("score.py")(["proto-500"])
    metrics = json.loads((tmp_path / "metrics/scores/proto-500.json").read_text())
    assert (metrics["model"], metrics["family"], metrics["beta"]) == ("proto-500", "proto",
                                                                      500.0)
    assert metrics["recognizability"] == 1.0 and metrics["originality"] < 1e-5
    assert metrics["n_samples"] == 4 * 3

    write_samples(tmp_path, copies=1, exemplar_offset=1)  # made from other exemplars
    with pytest.raises(InputError, match="do not match the test exemplars"):
        stage_main("score.py")(["proto-500"])


def write_samples(folder: Path, copies: int, exemplar_offset: int = 0) -> None:
    exemplars = pd.read_parquet(folder / "data/exemplars/exemplars.parquet")
    test = exemplars[exemplars["split"] == "test"]
    samples = pd.DataFrame({
        "category": test["category"].repeat(copies).to_numpy(),
        "exemplar_drawing_id": test["drawing_id"].repeat(copies).to_numpy() + exemplar_offset,
        "sample_index": np.tile(np.arange(copies), len(test)),
        "pixels": test["pixels"].repeat(copies).to_numpy()})
    (folder / "models/proto-500/samples").mkdir(parents=True, exist_ok=True)
    samples.to_parquet(folder / "models/proto-500/samples/samples.parquet")
