"""The RAE of Table 1, its saved form, and the train_rae and encode stages."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from latentsketch.config import Params, to_dict
from latentsketch.io import images_to_column, read_json, save_weights
from latentsketch.models.rae import (RAE, WEIGHTS_FILE, RaeConfig, frozen_running_stats,
                                     initialize_codebook, load_latent_stats, load_rae,
                                     reconstruction_loss)

ROOT = Path(__file__).resolve().parents[1]


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_encoder_layers_have_the_parameter_counts_of_table_1():
    rae = RAE(RaeConfig(latent_dim=128))
    convs = [m for m in rae.encoder.trunk if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in rae.encoder.trunk if isinstance(m, torch.nn.BatchNorm2d)]
    assert [count(m) for m in convs] == [256, 8_192, 32_768, 131_072]
    assert [count(m) for m in norms] == [32, 64, 128, 256]
    assert count(rae.encoder.to_latent) == 147_584


def test_decoder_layers_have_the_parameter_counts_of_table_1():
    rae = RAE(RaeConfig(latent_dim=128))
    layers = list(rae.decoder.layers)
    deconvs = [m for m in layers if isinstance(m, torch.nn.ConvTranspose2d)]
    norms = [m for m in layers if isinstance(m, torch.nn.BatchNorm2d)]
    # Table 1 prints 1,179,648 for the first layer, twice d·128·6·6 at d = 128; a
    # [d,1,1] → [128,6,6] transposed convolution without bias has 589,824.
    assert [count(m) for m in deconvs] == [589_824, 131_072, 32_768, 8_192]
    assert [count(m) for m in norms] == [256, 128, 64, 32]
    assert count(layers[-2]) == 257  # the final 4×4 Conv2d after ZeroPad2d


def test_latents_have_size_d_and_reconstructions_are_images_in_unit_range():
    rae = RAE(RaeConfig(latent_dim=64)).eval()
    latents = rae.encode(torch.rand(5, 1, 48, 48))
    images = rae.decode(latents)
    assert latents.shape == (5, 64) and images.shape == (5, 1, 48, 48)
    assert images.min().item() >= 0.0 and images.max().item() <= 1.0


def test_kl_encode_is_a_posterior_sample_drawn_from_the_generator():
    rae = RAE(RaeConfig(latent_dim=8, betas={"kl": 1.0})).eval()
    images = torch.rand(3, 1, 48, 48)
    first = rae.encode(images, torch.Generator().manual_seed(0))
    again = rae.encode(images, torch.Generator().manual_seed(0))
    other = rae.encode(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and not torch.equal(first, other)
    mean, _ = rae.encoder(images)
    assert not torch.allclose(first, mean)


def test_vq_encode_returns_codewords():
    rae = RAE(RaeConfig(latent_dim=8, betas={"vq": 1.0}, vq_codebook_size=16)).eval()
    latents = rae.encode(torch.rand(3, 1, 48, 48)).reshape(-1, 4)
    codebook = rae.quantizer.codebook
    assert all(any(torch.equal(sub, word) for word in codebook) for sub in latents)


def test_vq_codebook_starts_among_the_latents_of_the_first_batch():
    torch.manual_seed(0)
    rae = RAE(RaeConfig(latent_dim=8, betas={"vq": 1.0}, vq_codebook_size=4))
    images = torch.rand(3, 1, 48, 48)
    running_mean = rae.encoder.trunk[1].running_mean.clone()
    initialize_codebook(rae, images, torch.Generator().manual_seed(0))
    with frozen_running_stats(rae):
        subvectors = rae.encoder(images)[0].reshape(-1, 4)
    assert all(torch.isclose(subvectors, word).all(dim=1).any() for word in
               rae.quantizer.codebook)
    assert torch.equal(rae.encoder.trunk[1].running_mean, running_mean)


def test_reconstruction_loss_sums_pixels_and_averages_the_batch():
    images = torch.zeros(2, 1, 48, 48)
    reconstructions = torch.full((2, 1, 48, 48), 0.5)
    assert reconstruction_loss(images, reconstructions).item() == pytest.approx(576.0)


def test_auxiliary_passes_leave_batchnorm_running_stats_alone():
    rae = RAE(RaeConfig(latent_dim=8)).train()
    before = rae.encoder.trunk[1].running_mean.clone()
    with frozen_running_stats(rae):
        rae.encode(torch.rand(4, 1, 48, 48) + 5)
    assert torch.equal(rae.encoder.trunk[1].running_mean, before)
    rae.encode(torch.rand(4, 1, 48, 48) + 5)
    assert not torch.equal(rae.encoder.trunk[1].running_mean, before)


def test_saved_rae_reloads_in_eval_mode_with_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    config = RaeConfig(latent_dim=8, betas={"proto": 5.0, "barlow": 50.0}, n_classes=3,
                       proto_projector_width=16, contrastive_probe_dim=16)
    rae = RAE(config).eval()
    save_weights(tmp_path / WEIGHTS_FILE, rae.state_dict(),
                 {**config.to_dict(), "model": "proto-5+barlow-50"})
    loaded = load_rae(tmp_path)
    images = torch.rand(2, 1, 48, 48)
    assert not loaded.training
    assert loaded.config.betas == {"barlow": 50.0, "proto": 5.0}
    assert torch.equal(loaded.decode(loaded.encode(images)), rae.decode(rae.encode(images)))


# --- the stages, run as a user would run them ------------------------------------------

def write_tiny_study(folder: Path, epochs: int) -> None:
    """Six categories of eight synthetic drawings (two test) and a 4-epoch params file."""
    rng = np.random.default_rng(0)
    rows, images = [], []
    for c in range(6):
        strokes = rng.integers(6, 42, size=(3, 4))
        for drawer in range(8):
            page = np.zeros((48, 48), np.uint8)
            for x0, y0, x1, y1 in strokes + rng.integers(-2, 3, size=(3, 4)):
                page[min(y0, y1):max(y0, y1) + 3, min(x0, x1):max(x0, x1) + 3] = 255
            images.append(page)
            rows.append({"dataset": "omniglot", "split": "test" if c >= 4 else "train",
                         "category": f"Tiny/character{c + 1:02d}", "alphabet": "Tiny",
                         "drawer": f"{drawer:02d}"})
    drawings = pd.DataFrame(rows)
    drawings.insert(0, "drawing_id", np.arange(len(rows)))
    drawings["pixels"] = images_to_column(np.stack(images))
    (folder / "data/prepared").mkdir(parents=True)
    (folder / "data/exemplars").mkdir(parents=True)
    drawings.to_parquet(folder / "data/prepared/drawings.parquet", index=False)
    exemplars = drawings.groupby("category").head(1)[["category", "split", "drawing_id",
                                                       "pixels"]]
    exemplars.to_parquet(folder / "data/exemplars/exemplars.parquet", index=False)
    params = to_dict(Params(threads=1))
    params["rae"].update(epochs=epochs, batch_size=8, latent_dim=16)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(folder, *args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory):
    """A tiny study whose proto+barlow RAE was killed after its first epoch, then rerun."""
    folder = tmp_path_factory.mktemp("study")
    write_tiny_study(folder, epochs=4)
    model = "proto-5+barlow-50"
    checkpoint = folder / "checkpoints/rae" / f"{model}.pt"
    first = run_stage(folder, str(ROOT / "stages/train_rae.py"), model)
    while not checkpoint.exists() and first.poll() is None:
        time.sleep(0.01)
    still_running = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = torch.load(checkpoint, weights_only=False)["epoch"]
    second = run_stage(folder, str(ROOT / "stages/train_rae.py"), model)
    log = second.communicate(timeout=300)[0]
    assert second.returncode == 0, log
    return {"folder": folder, "model": model, "log": log, "killed_at": killed_at,
            "killed_while_running": still_running}


@pytest.mark.slow
def test_killed_training_resumes_and_ends_at_the_same_epoch(trained_study):
    assert trained_study["killed_while_running"]
    assert 1 <= trained_study["killed_at"] < 4
    assert f"resumed from checkpoints/rae/{trained_study['model']}.pt" in trained_study["log"]
    history = pd.read_csv(trained_study["folder"] / "logs/rae" /
                          f"{trained_study['model']}.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert {"loss", "reconstruction", "proto", "barlow", "lr"} <= set(history.columns)


@pytest.mark.slow
def test_training_leaves_complete_artifacts_and_no_partial_files(trained_study):
    folder = trained_study["folder"]
    rae_dir = folder / "models" / trained_study["model"] / "rae"
    assert (rae_dir / "reconstructions.png").stat().st_size > 0
    rae = load_rae(rae_dir)
    assert rae.config.betas == {"barlow": 50.0, "proto": 5.0} and rae.config.n_classes == 4
    assert list(folder.rglob("*.tmp")) == []


@pytest.mark.slow
def test_encode_writes_latents_of_every_drawing_and_exemplar_and_train_stats(trained_study):
    folder, model = trained_study["folder"], trained_study["model"]
    encode = run_stage(folder, str(ROOT / "stages/encode.py"), model)
    log = encode.communicate(timeout=300)[0]
    assert encode.returncode == 0, log
    latents_dir = folder / "models" / model / "latents"
    drawings = pd.read_parquet(latents_dir / "drawings.parquet")
    exemplars = pd.read_parquet(latents_dir / "exemplars.parquet")
    assert list(drawings.columns) == ["drawing_id", "category", "split", "latent"]
    assert list(exemplars.columns) == ["category", "split", "drawing_id", "latent"]
    assert len(drawings) == 48 and len(exemplars) == 6
    assert {len(latent) for latent in drawings["latent"]} == {16}
    train = np.stack(drawings.loc[drawings["split"] == "train", "latent"].to_list())
    mean, std = load_latent_stats(latents_dir)
    assert mean == pytest.approx(train.mean(), abs=1e-5)
    assert std == pytest.approx(train.std(), rel=1e-4)
    assert read_json(latents_dir / "stats.json")["latent_dim"] == 16
