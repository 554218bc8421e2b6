"""The MLP U-Net and pixel U-Net denoisers, their saved form and their training."""
import pytest
import torch

from latentsketch.config import LdmParams
from latentsketch.diffusion import LatentDiffusion, NoiseSchedule, load_ldm, save_ldm
from latentsketch.diffusion.train import train_denoiser
from latentsketch.errors import InputError
from latentsketch.models.denoiser import MLPUNet, build_denoiser
from latentsketch.models.pixel_unet import PixelUNet
from latentsketch.runtime import Runtime


def randomized(model: torch.nn.Module) -> torch.nn.Module:
    """A model whose null condition is not zero, as after training."""
    torch.manual_seed(0)
    with torch.no_grad():
        model.null_exemplar.normal_()
    return model.eval()


@pytest.fixture(scope="module")
def mlp():
    return randomized(MLPUNet(latent_dim=8, widths=[32, 16, 8], time_dim=16))


@pytest.fixture(scope="module")
def pixel_unet():
    return randomized(PixelUNet(channels=[4, 8], time_dim=8))


@pytest.mark.parametrize("attention", [False, True])
def test_mlp_unet_predicts_one_noise_vector_per_latent(attention):
    model = MLPUNet(latent_dim=64, widths=[64, 32], time_dim=32, attention=attention)
    out = model(torch.randn(5, 64), torch.randint(0, 1000, (5,)), torch.randn(5, 64))
    assert out.shape == (5, 64)


def test_pixel_unet_predicts_one_noise_image_per_image(pixel_unet):
    x = torch.randn(3, 1, 48, 48)
    assert pixel_unet(x, torch.tensor([0, 500, 999]), torch.rand(3, 1, 48, 48)).shape == x.shape


@pytest.mark.parametrize("name", ["mlp", "pixel_unet"])
def test_dropped_rows_ignore_their_exemplar(name, request):
    model = request.getfixturevalue(name)
    shape = (4, 8) if name == "mlp" else (4, 1, 48, 48)
    z_t, t, drop = torch.randn(shape), torch.full((4,), 300), torch.ones(4, dtype=torch.bool)
    with torch.no_grad():
        first = model(z_t, t, torch.randn(shape), drop)
        second = model(z_t, t, torch.randn(shape), drop)
        kept = model(z_t, t, torch.randn(shape))
    assert torch.allclose(first, second)
    assert not torch.allclose(first, kept, atol=1e-4)


def test_prediction_depends_on_the_timestep(mlp):
    z_t, exemplar = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        assert not torch.allclose(mlp(z_t, 10, exemplar), mlp(z_t, 900, exemplar), atol=1e-4)


def test_each_row_is_denoised_independently_of_its_batch(mlp):
    """No batch statistics: what guidance's stacked batch relies on."""
    z_t, exemplar, t = torch.randn(6, 8), torch.randn(6, 8), torch.randint(0, 1000, (6,))
    with torch.no_grad():
        together = mlp(z_t, t, exemplar)
        alone = torch.cat([mlp(z_t[i:i + 1], t[i:i + 1], exemplar[i:i + 1]) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_attention_widths_must_split_into_heads():
    with pytest.raises(InputError, match="attention"):
        MLPUNet(latent_dim=8, widths=[36], attention=True)


def test_unknown_denoiser_kind_is_an_input_error():
    with pytest.raises(InputError, match="unknown kind"):
        build_denoiser({"kind": "transformer"})


@pytest.mark.parametrize("name,space", [("mlp", "latent"), ("pixel_unet", "pixel")])
def test_saved_model_reloads_with_the_same_predictions_and_normalization(name, space,
                                                                         request, tmp_path):
    denoiser = request.getfixturevalue(name)
    schedule = NoiseSchedule.build("scaled_linear", 50, 1e-3, 0.2)
    model = LatentDiffusion(denoiser, schedule, mean=0.25, std=2.5, space=space,
                            history=({"epoch": 1, "loss": 0.5},))
    save_ldm(tmp_path, model)
    loaded = load_ldm(tmp_path, "cpu")
    shape = (2, 8) if name == "mlp" else (2, 1, 48, 48)
    z_t, exemplar = torch.randn(shape), torch.randn(shape)
    with torch.no_grad():
        assert torch.equal(loaded.denoiser(z_t, 7, exemplar), denoiser(z_t, 7, exemplar))
    assert torch.equal(loaded.schedule.alpha_bars, schedule.alpha_bars)
    assert (loaded.mean, loaded.std, loaded.space) == (0.25, 2.5, space)
    assert torch.allclose(loaded.denormalize(loaded.normalize(exemplar)), exemplar, atol=1e-6)


def test_missing_weights_are_an_input_error(tmp_path):
    with pytest.raises(InputError, match="train the model"):
        load_ldm(tmp_path / "nothing", "cpu")


def test_default_params_build_a_denoiser_of_the_configured_widths():
    p = LdmParams()
    model = MLPUNet(64, p.widths, p.time_dim, p.attention)
    assert model.project_in.out_features == p.widths[0]
    assert [level.block1.linear1.out_features for level in model.down] == p.widths


def training_run(tmp_path, epochs):
    torch.manual_seed(0)
    denoiser = MLPUNet(latent_dim=4, widths=[16], time_dim=8)
    schedule = NoiseSchedule.build("linear", 100, 1e-3, 0.1)
    generator = torch.Generator().manual_seed(3)
    variations = torch.randn(64, 4, generator=generator)
    exemplars = variations.round()
    runtime = Runtime(device=torch.device("cpu"), precision="fp32", seed=0)
    return train_denoiser(denoiser, schedule, variations, exemplars, epochs=epochs,
                          batch_size=16, lr=1e-3, lr_step_epochs=2, lr_gamma=0.1,
                          cond_drop_prob=0.1, runtime=runtime, name="test",
                          checkpoint=tmp_path / "ldm.pt", config={"case": "resume"})


def test_training_resumes_from_its_checkpoint_with_the_same_history(tmp_path):
    straight = training_run(tmp_path / "straight", epochs=3)
    training_run(tmp_path / "stopped", epochs=2)
    resumed = training_run(tmp_path / "stopped", epochs=3)
    assert [row["loss"] for row in resumed] == pytest.approx([row["loss"] for row in straight])
    assert [row["lr"] for row in resumed] == pytest.approx([1e-3, 1e-3, 1e-4])
