"""Eq. 9 feature importance maps and the reference maps they are compared with."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentsketch import maps
from latentsketch.diffusion import LatentDiffusion, NoiseSchedule
from latentsketch.errors import InputError
from latentsketch.models.denoiser import MLPUNet
from latentsketch.models.rae import Decoder

LATENT_DIM = 4


def tiny_decoder() -> Decoder:
    """The Table 1 decoder at d = 4, with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    decoder = Decoder(LATENT_DIM)
    for module in decoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return decoder.eval()


def tiny_ldm(mean: float = 0.3, std: float = 2.5, timesteps: int = 12) -> LatentDiffusion:
    torch.manual_seed(1)
    denoiser = MLPUNet(LATENT_DIM, [16, 8], time_dim=8).eval()
    return LatentDiffusion(denoiser, NoiseSchedule.build(timesteps=timesteps), mean, std)


def explicit_jacobian_contribution(decode, latent, direction):
    """|J · direction| with the 48×48×d Jacobian of every image built in full."""
    def one_image(z):
        return decode(z[None])[0, 0]

    jacobian = torch.func.vmap(torch.func.jacfwd(one_image))(latent)  # N×48×48×d
    return torch.einsum("nhwd,nd->nhw", jacobian, direction).abs()


def test_jvp_contribution_equals_explicit_jacobian_product():
    decoder = tiny_decoder()
    latent, direction = torch.randn(3, LATENT_DIM), torch.randn(3, LATENT_DIM)
    with torch.no_grad():
        by_jvp = maps.jvp_contribution(decoder, latent, direction)
    expected = explicit_jacobian_contribution(decoder, latent, direction)
    assert by_jvp.shape == (3, 48, 48)
    torch.testing.assert_close(by_jvp, expected, rtol=1e-4, atol=1e-6)


def test_frozen_decoder_draws_the_same_images_with_batch_norm_folded():
    decoder = tiny_decoder()
    frozen = maps.frozen_decoder(decoder)
    latent = torch.randn(4, LATENT_DIM)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.modules())
    assert not any(p.requires_grad for p in frozen.parameters())
    with torch.no_grad():
        torch.testing.assert_close(frozen(latent), decoder(latent), rtol=1e-4, atol=1e-5)


def test_feature_maps_apply_the_chain_rule_through_denormalization():
    decoder, ldm = tiny_decoder(), tiny_ldm(mean=0.3, std=2.5)
    exemplars = torch.randn(2, LATENT_DIM)

    def by_hand(decode, latent_norm, direction):
        # J_D at the de-normalized latent, times std · s_t: the chain rule written out
        def plain(latent):
            return decoder(latent)
        latent = ldm.mean + ldm.std * latent_norm
        return explicit_jacobian_contribution(plain, latent, ldm.std * direction)

    options = dict(variations=3, sampler="ddim", steps=4)
    expected = maps.feature_maps(ldm, decoder, exemplars, contribution=by_hand,
                                 generator=torch.Generator().manual_seed(5), **options)
    by_jvp = maps.feature_maps(ldm, decoder, exemplars,
                               generator=torch.Generator().manual_seed(5), **options)
    assert by_jvp.shape == (2, 3, 48, 48)
    torch.testing.assert_close(by_jvp, expected, rtol=1e-4, atol=1e-6)


def test_score_weighting_divides_epsilon_weighting_by_noise_level():
    decoder, ldm = tiny_decoder(), tiny_ldm()
    exemplars = torch.randn(2, LATENT_DIM)
    one_step = dict(variations=2, sampler="ddim", steps=1)  # the step at t = T − 1 only
    by_score = maps.feature_maps(ldm, decoder, exemplars, weighting="score",
                                 generator=torch.Generator().manual_seed(0), **one_step)
    by_epsilon = maps.feature_maps(ldm, decoder, exemplars, weighting="epsilon",
                                   generator=torch.Generator().manual_seed(0), **one_step)
    noise_level = (1 - ldm.schedule.alpha_bars[-1]).sqrt()
    torch.testing.assert_close(by_score, by_epsilon / noise_level)


def test_ddpm_maps_sum_one_term_per_timestep():
    decoder, ldm = tiny_decoder(), tiny_ldm(timesteps=6)
    visited = []

    def count(decode, latent, direction):
        visited.append(len(latent))
        return torch.zeros(len(latent), 48, 48)

    maps.feature_maps(ldm, decoder, torch.randn(3, LATENT_DIM), variations=4,
                      sampler="ddpm", contribution=count)
    assert visited == [12] * 6  # all T steps, the 3 × 4 chains in one batch


def test_category_maps_average_the_variations():
    decoder, ldm = tiny_decoder(), tiny_ldm()
    exemplars = torch.randn(2, LATENT_DIM)
    options = dict(variations=3, sampler="ddim", steps=3)
    chains = maps.feature_maps(ldm, decoder, exemplars,
                               generator=torch.Generator().manual_seed(2), **options)
    averaged = maps.category_maps(ldm, decoder, exemplars,
                                  generator=torch.Generator().manual_seed(2), **options)
    np.testing.assert_allclose(averaged, chains.mean(dim=1).numpy(), rtol=1e-6)
    assert (averaged >= 0).all() and averaged.std() > 0


# --- reference maps ---------------------------------------------------------------

def human_maps(participants: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for category in ("Greek/character01", "Latin/character02"):
        for person in (["p1", "p2", "p3"] if participants else [None]):
            row = {"category": category, "map": rng.random(48 * 48).tolist()}
            if participants:
                row["participant"] = person
            rows.append(row)
    return pd.DataFrame(rows)


def test_human_map_file_round_trips_with_participants(tmp_path):
    table = human_maps(participants=True)
    table.to_parquet(tmp_path / "human.parquet")
    reference = maps.load_reference_maps(tmp_path / "human.parquet")
    assert list(reference.columns) == ["category", "participant", "map"]
    assert reference["participant"].tolist() == ["p1", "p2", "p3"] * 2
    np.testing.assert_allclose(reference["map"][4].ravel(), table["map"][4], rtol=1e-6)
    averaged = maps.average_reference(reference)
    np.testing.assert_allclose(averaged["Greek/character01"],
                               np.mean(np.stack(reference["map"][:3]), axis=0))


def test_human_maps_may_be_nested_lists_or_float32_bytes(tmp_path):
    image = np.arange(48 * 48, dtype=np.float32).reshape(48, 48) / 100
    table = pd.DataFrame({"category": ["a", "b"],
                          "map": [image.tolist(), image.tobytes()]})
    table["map"] = table["map"].astype(object)
    maps_read = maps.column_to_maps(table["map"])
    np.testing.assert_array_equal(maps_read[0], image)
    np.testing.assert_array_equal(maps_read[1], image)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="map"), r"missing column\(s\) \['map'\]"),
    (lambda t: t.assign(map=[[0.5] * 100] * len(t)), r"row 0: shape \(100,\), expected 48×48"),
    (lambda t: t.assign(map=[[np.nan] * 2304] * len(t)), "NaN or infinite"),
    (lambda t: t.assign(map=["not a map"] * len(t)), "not a list of numbers"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "Greek/character01, participant p1 has 2 maps"),
])
def test_malformed_human_map_file_is_rejected_with_a_clear_message(tmp_path, change,
                                                                   message):
    change(human_maps(participants=True)).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=message):
        maps.load_reference_maps(tmp_path / "bad.parquet")


def test_one_map_per_category_without_participant_column(tmp_path):
    table = human_maps(participants=False)
    pd.concat([table, table.iloc[:1]]).to_parquet(tmp_path / "twice.parquet")
    with pytest.raises(InputError, match="add a participant column"):
        maps.load_reference_maps(tmp_path / "twice.parquet")


def test_missing_reference_file_names_the_param_to_fix(tmp_path):
    with pytest.raises(InputError, match="importance.reference_maps"):
        maps.load_reference_maps(tmp_path / "absent.parquet")


def test_ink_frequency_proxy_is_the_fraction_of_inked_drawings():
    images = np.zeros((4, 48, 48), dtype=np.uint8)
    images[:3, 10, 10] = 255  # inked in 3 of the 4 drawings of category a
    images[1, 20, 20] = 100  # faint grey: not ink
    images[3, 5, 5] = 255  # category b
    proxy = maps.ink_frequency_maps(images, np.array(["a", "a", "a", "b"]), ["a", "b"])
    assert proxy["map"][0][10, 10] == 1.0 and proxy["map"][0][20, 20] == 0.0
    assert proxy["map"][1][5, 5] == 1.0 and proxy["map"][1].sum() == 1.0
    assert proxy["participant"].isna().all()


# --- the importance stage on a tiny synthetic project ------------------------------

def write_synthetic_model(model_dir, exemplars: pd.DataFrame, latent_dim: int = LATENT_DIM,
                          widths=(16, 8), timesteps: int = 12, seed: int = 0) -> None:
    """RAE, exemplar latents and LDM files as the encode and train stages lay them out."""
    from latentsketch.diffusion import save_ldm
    from latentsketch.io import latents_to_column, save_weights, write_json
    from latentsketch.models.rae import RAE, RaeConfig

    torch.manual_seed(seed)
    rae = RAE(RaeConfig(latent_dim=latent_dim)).eval()
    save_weights(model_dir / "rae" / "rae.safetensors", rae.state_dict(),
                 rae.config.to_dict())
    latents = torch.randn(len(exemplars), latent_dim)
    table = exemplars[["category", "split", "drawing_id"]].assign(
        latent=latents_to_column(latents))
    for name in ("exemplars.parquet", "drawings.parquet"):
        (model_dir / "latents").mkdir(parents=True, exist_ok=True)
        table.to_parquet(model_dir / "latents" / name)
    write_json(model_dir / "latents" / "stats.json", {"mean": 0.1, "std": 1.5})
    denoiser = MLPUNet(latent_dim, list(widths), time_dim=8).eval()
    save_ldm(model_dir / "ldm", LatentDiffusion(
        denoiser, NoiseSchedule.build(timesteps=timesteps), 0.1, 1.5))


def write_synthetic_data(root, n_categories: int = 4, per_category: int = 3) -> pd.DataFrame:
    """Prepared drawings and exemplars of test categories; returns the exemplars."""
    from latentsketch.io import images_to_column

    rng = np.random.default_rng(0)
    categories = [f"Alphabet/character{i:02d}" for i in range(1, n_categories + 1)]
    images = (rng.random((n_categories * per_category, 48, 48)) > 0.9).astype(np.uint8) * 255
    drawings = pd.DataFrame({
        "drawing_id": np.arange(len(images)), "dataset": "omniglot", "split": "test",
        "category": np.repeat(categories, per_category), "alphabet": "Alphabet",
        "drawer": np.tile([f"d{i}" for i in range(per_category)], n_categories),
        "pixels": images_to_column(images)})
    (root / "data" / "prepared").mkdir(parents=True)
    drawings.to_parquet(root / "data" / "prepared" / "drawings.parquet")
    exemplars = drawings[drawings["drawer"] == "d0"][["category", "split", "drawing_id",
                                                      "pixels"]]
    (root / "data" / "exemplars").mkdir(parents=True)
    exemplars.to_parquet(root / "data" / "exemplars" / "exemplars.parquet")
    return exemplars


def run_stage_main(script: str, argv: list[str]) -> None:
    """A stage script's main(), in this process (no second torch import)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "stages" / script
    spec = importlib.util.spec_from_file_location(f"stage_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def write_params(root, **sections) -> None:
    import yaml
    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    params.update(device="cpu", precision="fp32")
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_importance_stage_maps_best_models_against_the_proxy(tmp_path, monkeypatch):
    import json

    exemplars = write_synthetic_data(tmp_path)
    for key in ("none", "proto-5"):
        write_synthetic_model(tmp_path / "models" / key, exemplars)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "best.json").write_text(json.dumps(
        {"none": "none", "proto": "proto-5", "vq": "vq-5", "pixel": "pixel"}))
    write_params(tmp_path, importance=dict(categories=3, variations=2, steps=2))
    monkeypatch.chdir(tmp_path)
    run_stage_main("importance.py", [])

    table = pd.read_parquet(tmp_path / "maps" / "maps.parquet")
    assert sorted(set(table["model"])) == ["none", "proto-5"]  # vq and pixel skipped
    assert len(table) == 2 * 3 and len(table["map"][0]) == 48 * 48
    reference = pd.read_parquet(tmp_path / "maps" / "reference.parquet")
    assert set(reference["source"]) == {maps.PROXY_REFERENCE}
    assert sorted(reference["category"]) == sorted(set(table["category"]))
    assert (tmp_path / "maps" / "overlays.png").stat().st_size > 1000


def test_importance_stage_maps_the_categories_of_user_human_maps(tmp_path, monkeypatch):
    import json

    exemplars = write_synthetic_data(tmp_path)
    write_synthetic_model(tmp_path / "models" / "none", exemplars)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "best.json").write_text(json.dumps({"none": "none"}))
    human = pd.DataFrame({"category": ["Alphabet/character02", "Alphabet/character03",
                                       "Elsewhere/character01"] * 2,
                          "participant": ["p1"] * 3 + ["p2"] * 3,
                          "map": [np.ones(48 * 48).tolist()] * 6})
    human.to_parquet(tmp_path / "human.parquet")
    write_params(tmp_path, importance=dict(variations=1, steps=1,
                                           reference_maps=str(tmp_path / "human.parquet")))
    monkeypatch.chdir(tmp_path)
    run_stage_main("importance.py", [])

    table = pd.read_parquet(tmp_path / "maps" / "maps.parquet")
    assert list(table["category"]) == ["Alphabet/character02", "Alphabet/character03"]
    reference = pd.read_parquet(tmp_path / "maps" / "reference.parquet")
    assert set(reference["source"]) == {"human"} and len(reference) == 4
