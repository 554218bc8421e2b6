"""DDPM and DDIM chains, guidance on a toy problem, and the train_ldm/sample stages."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from latentsketch.diffusion import (NoiseSchedule, ddim_sample, ddim_timesteps, ddpm_sample,
                                    diffusion_loss, guided_epsilon, load_ldm, sample)
from latentsketch.io import (column_to_images, images_to_column, latents_to_column,
                             save_weights, write_json, write_parquet)
from latentsketch.models.denoiser import MLPUNet

ROOT = Path(__file__).resolve().parents[1]
CENTER = torch.tensor([2.0, 0.0])
OWN_SHARE = 0.7  # an ambiguous condition names the right component 70% of the time


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are too small to gain from threads, and lose much to contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D data: two Gaussians at ±CENTER (sd 0.2) and a condition naming one of them.

    A "sure" condition (±CENTER) always gets its own component; an ambiguous one
    (±CENTER / 2) gets it with probability OWN_SHARE, else the other component.
    """
    side = torch.randint(0, 2, (n,), generator=generator) * 2 - 1.0
    sure = torch.rand(n, generator=generator) < 0.5
    own = sure | (torch.rand(n, generator=generator) < OWN_SHARE)
    component = torch.where(own, side, -side)
    z = component[:, None] * CENTER + 0.2 * torch.randn(n, 2, generator=generator)
    return z, side[:, None] * CENTER * torch.where(sure, 1.0, 0.5)[:, None]


@pytest.fixture(scope="module")
def toy():
    """A tiny denoiser trained for a few seconds on the toy mixture, T = 50."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    schedule = NoiseSchedule.build("linear", 50, 1e-3, 0.3)
    denoiser = MLPUNet(latent_dim=2, widths=[32], time_dim=16)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=1e-2)
    for step in range(600):
        if step == 400:  # a last third at a tenth of the lr settles the means
            optimizer.param_groups[0]["lr"] = 1e-3
        z, cond = toy_batch(256, generator)
        loss = diffusion_loss(denoiser, schedule, z, cond, cond_drop_prob=0.2,
                              generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return denoiser.eval(), schedule


def conditions(scale: float, per_side: int = 500) -> torch.Tensor:
    return torch.cat([CENTER.expand(per_side, 2), -CENTER.expand(per_side, 2)]) * scale


def share_on_named_component(samples: torch.Tensor, cond: torch.Tensor) -> float:
    named = cond.sign() * CENTER
    return ((samples - named).norm(dim=1) < (samples + named).norm(dim=1)).float().mean().item()


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_samples_land_on_the_component_their_condition_names(toy, sampler, eta):
    denoiser, schedule = toy
    cond = conditions(1.0)
    samples = sample(denoiser, schedule, cond, sampler=sampler, ddim_steps=25, ddim_eta=eta,
                     guidance_scale=0.0, generator=torch.Generator().manual_seed(1))
    for side, rows in ((1, slice(0, 500)), (-1, slice(500, 1000))):
        mean = samples[rows].mean(0)
        assert torch.allclose(mean, side * CENTER, atol=0.15), (sampler, side, mean)
    assert share_on_named_component(samples, cond) > 0.97


def test_unguided_ddpm_reproduces_the_conditional_mixture(toy):
    denoiser, schedule = toy
    cond = conditions(0.5)
    samples = ddpm_sample(denoiser, schedule, cond, guidance_scale=0.0,
                          generator=torch.Generator().manual_seed(3))
    assert share_on_named_component(samples, cond) == pytest.approx(OWN_SHARE, abs=0.1)


def test_guidance_brings_samples_closer_to_the_named_component(toy):
    denoiser, schedule = toy
    cond = conditions(0.5)
    shares, distances = [], []
    for guidance_scale in (0.0, 1.0):
        samples = ddpm_sample(denoiser, schedule, cond, guidance_scale=guidance_scale,
                              generator=torch.Generator().manual_seed(2))
        shares.append(share_on_named_component(samples, cond))
        distances.append((samples - cond.sign() * CENTER).norm(dim=1).mean().item())
    assert shares[1] > shares[0] + 0.08, shares
    assert distances[1] < distances[0] - 0.3, distances


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    schedule = NoiseSchedule.build("linear", 20, 1e-3, 0.2)
    return MLPUNet(latent_dim=3, widths=[16], time_dim=8).eval(), schedule


def test_ddim_is_deterministic_given_the_starting_noise(untrained):
    denoiser, schedule = untrained
    cond, z_T = torch.randn(4, 3), torch.randn(4, 3)
    first = ddim_sample(denoiser, schedule, cond, steps=5, z_T=z_T,
                        generator=torch.Generator().manual_seed(0))
    second = ddim_sample(denoiser, schedule, cond, steps=5, z_T=z_T,
                         generator=torch.Generator().manual_seed(99))
    assert torch.equal(first, second)


def test_ancestral_ddim_over_every_timestep_is_the_ddpm_chain(untrained):
    denoiser, schedule = untrained
    cond, z_T = torch.randn(4, 3), torch.randn(4, 3)
    ddpm = ddpm_sample(denoiser, schedule, cond, z_T=z_T,
                       generator=torch.Generator().manual_seed(4))
    ddim = ddim_sample(denoiser, schedule, cond, steps=schedule.timesteps, eta=1.0, z_T=z_T,
                       generator=torch.Generator().manual_seed(4))
    assert torch.allclose(ddpm, ddim, atol=1e-4)


def test_ddpm_draws_fresh_noise_at_every_step(untrained):
    denoiser, schedule = untrained
    cond, z_T = torch.randn(4, 3), torch.randn(4, 3)
    first = ddpm_sample(denoiser, schedule, cond, z_T=z_T,
                        generator=torch.Generator().manual_seed(0))
    second = ddpm_sample(denoiser, schedule, cond, z_T=z_T,
                         generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("sampler,expected", [("ddpm", list(range(19, -1, -1))),
                                              ("ddim", ddim_timesteps(20, 6))])
def test_hook_sees_every_step_with_its_timestep_and_guided_epsilon(untrained, sampler,
                                                                   expected):
    denoiser, schedule = untrained
    cond, seen = torch.randn(5, 3), []

    def hook(step, t, z_t, epsilon):
        with torch.no_grad():
            recomputed = guided_epsilon(denoiser, z_t, t, cond, 1.0)
        assert torch.allclose(epsilon, recomputed, atol=1e-6)
        seen.append((step, t))

    chain = ddim_sample if sampler == "ddim" else ddpm_sample
    options = {"steps": 6} if sampler == "ddim" else {}
    chain(denoiser, schedule, cond, hook=hook, generator=torch.Generator().manual_seed(0),
          **options)
    assert seen == list(enumerate(expected))


def test_batching_across_exemplars_does_not_change_ddim_samples(untrained):
    denoiser, schedule = untrained
    cond = torch.randn(7, 3)
    whole = sample(denoiser, schedule, cond, sampler="ddim", ddim_steps=4,
                   generator=torch.Generator().manual_seed(5), batch_size=100)
    pieces = sample(denoiser, schedule, cond, sampler="ddim", ddim_steps=4,
                    generator=torch.Generator().manual_seed(5), batch_size=3)
    assert torch.allclose(whole, pieces, atol=1e-6)


# --- the stages, end to end on a tiny synthetic workspace ---------------------------

LATENT_DIM = 8
CATEGORIES = {"Alpha/character01": "test", "Alpha/character02": "test",
              "Alpha/character04": "train", "Beta/character05": "train"}


def run_stage_script(name: str, argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Prepared drawings, exemplars, a model's latents and an (untrained) RAE."""
    from latentsketch.models.rae import RAE, WEIGHTS_FILE, RaeConfig

    rng = np.random.default_rng(0)
    rows = [(c, split, drawer) for c, split in CATEGORIES.items() for drawer in range(3)]
    images = rng.integers(0, 256, (len(rows), 48, 48), dtype=np.uint8)
    drawings = pd.DataFrame({"drawing_id": np.arange(len(rows)), "dataset": "omniglot",
                             "split": [r[1] for r in rows], "category": [r[0] for r in rows],
                             "alphabet": [r[0].split("/")[0] for r in rows],
                             "drawer": [str(r[2]) for r in rows],
                             "pixels": images_to_column(images)})
    exemplars = drawings[drawings["drawer"] == "0"]
    write_parquet(tmp_path / "data/prepared/drawings.parquet", drawings)
    write_parquet(tmp_path / "data/exemplars/exemplars.parquet",
                  exemplars[["category", "split", "drawing_id", "pixels"]])
    latents = rng.normal(1.0, 3.0, (len(rows), LATENT_DIM)).astype(np.float32)
    latents_dir = tmp_path / "models/none/latents"
    write_parquet(latents_dir / "drawings.parquet",
                  drawings[["drawing_id", "category", "split"]].assign(
                      latent=latents_to_column(latents)))
    write_parquet(latents_dir / "exemplars.parquet",
                  exemplars[["category", "split", "drawing_id"]].assign(
                      latent=latents_to_column(latents[exemplars.index])))
    train = latents[drawings["split"] == "train"]
    write_json(latents_dir / "stats.json", {"mean": float(train.mean()),
                                            "std": float(train.std()),
                                            "latent_dim": LATENT_DIM})
    rae = RAE(RaeConfig(latent_dim=LATENT_DIM))
    save_weights(tmp_path / "models/none/rae" / WEIGHTS_FILE, rae.state_dict(),
                 rae.config.to_dict())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ldm"].update(timesteps=20, widths=[16], time_dim=8, epochs=2, batch_size=4)
    params["pixel"].update(channels=[4, 8], time_dim=8, epochs=1, batch_size=4)
    params["sample"].update(per_exemplar=3, sampler="ddpm", pixel_sampler="ddim",
                            ddim_steps=4, pixel_ddim_steps=4)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("model", ["none", "pixel"])
def test_train_and_sample_stages_write_the_model_samples_and_grid(workspace, model):
    run_stage_script("train_ldm", [model])
    run_stage_script("sample", [model])
    history = pd.read_csv(workspace / f"logs/ldm/{model}.csv")
    assert history["epoch"].tolist() == ([1, 2] if model == "none" else [1])
    loaded = load_ldm(workspace / f"models/{model}/ldm")
    assert loaded.space == ("pixel" if model == "pixel" else "latent")
    samples = pd.read_parquet(workspace / f"models/{model}/samples/samples.parquet")
    assert list(samples.columns) == ["category", "exemplar_drawing_id", "sample_index",
                                     "pixels"]
    assert samples["category"].tolist() == ["Alpha/character01"] * 3 + ["Alpha/character02"] * 3
    assert samples["sample_index"].tolist() == [0, 1, 2, 0, 1, 2]
    assert samples["exemplar_drawing_id"].tolist() == [0] * 3 + [3] * 3
    assert column_to_images(samples["pixels"]).shape == (6, 48, 48)
    assert (workspace / f"models/{model}/samples/grid.png").stat().st_size > 1000


def test_latent_model_trains_on_normalized_latents(workspace):
    run_stage_script("train_ldm", ["none"])
    stats = yaml.safe_load((workspace / "models/none/latents/stats.json").read_text())
    loaded = load_ldm(workspace / "models/none/ldm")
    assert (loaded.mean, loaded.std) == pytest.approx((stats["mean"], stats["std"]))
