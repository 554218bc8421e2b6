"""The forward process, the training loss and classifier-free guidance."""
import math

import pytest
import torch

from latentsketch.diffusion import NoiseSchedule, diffusion_loss, guided_epsilon
from latentsketch.diffusion.sampling import ddim_timesteps
from latentsketch.errors import InputError
from latentsketch.models.denoiser import MLPUNet


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule.build("linear", 1000, 1.5e-3, 1.95e-2)


def test_linear_betas_run_from_beta_start_to_beta_end_in_equal_steps(schedule):
    steps = schedule.betas.diff()
    assert schedule.betas[0].item() == pytest.approx(1.5e-3)
    assert schedule.betas[-1].item() == pytest.approx(1.95e-2)
    assert torch.allclose(steps, torch.full_like(steps, (1.95e-2 - 1.5e-3) / 999), rtol=1e-3)


def test_scaled_linear_betas_are_linear_in_their_square_root():
    scaled = NoiseSchedule.build("scaled_linear", 1000, 1.5e-3, 1.95e-2)
    roots = scaled.betas.sqrt()
    assert roots[0].item() ** 2 == pytest.approx(1.5e-3)
    assert roots[-1].item() ** 2 == pytest.approx(1.95e-2)
    assert roots.diff().std().item() < 1e-6
    # linear in √β puts more small steps early than linear in β
    assert scaled.betas[500].item() < NoiseSchedule.build().betas[500].item()


def test_alpha_bar_is_the_running_product_of_one_minus_beta(schedule):
    for t in (0, 1, 10, 500, 999):
        product = math.prod(1.0 - b for b in schedule.betas[:t + 1].double().tolist())
        assert schedule.alpha_bars[t].item() == pytest.approx(product, rel=1e-5)
    assert schedule.alpha_bars_prev[0].item() == 1.0
    assert schedule.alpha_bars[-1].item() < 1e-4  # z_T is (almost) pure noise


def test_posterior_matches_bayes_rule_on_the_two_gaussians(schedule):
    """r(z_{t−1} | z_t, z_0) ∝ r(z_t | z_{t−1}) r(z_{t−1} | z_0): precisions add."""
    z0, z_t = torch.tensor([[0.7, -1.2]]), torch.tensor([[0.1, 0.4]])
    for t in (1, 20, 400, 999):
        beta, alpha = schedule.betas[t].double(), schedule.alphas[t].double()
        alpha_bar_prev = schedule.alpha_bars[t - 1].double()
        precision = alpha / beta + 1.0 / (1.0 - alpha_bar_prev)
        mean = (alpha.sqrt() / beta * z_t.double()
                + alpha_bar_prev.sqrt() / (1.0 - alpha_bar_prev) * z0.double()) / precision
        assert schedule.posterior_variance(t).item() == pytest.approx(1 / precision.item(),
                                                                      rel=1e-4)
        got = schedule.posterior_mean(z0, z_t, torch.tensor([t])).double()
        assert torch.allclose(got, mean, atol=1e-5)


def test_posterior_at_the_first_step_returns_the_clean_latent(schedule):
    z0, z_t = torch.randn(3, 4), torch.randn(3, 4)
    assert schedule.posterior_variance(0).item() == 0.0
    assert torch.allclose(schedule.posterior_mean(z0, z_t, torch.zeros(3, dtype=torch.long)),
                          z0, atol=1e-6)


def test_forward_noised_draws_have_the_predicted_mean_and_variance(schedule):
    generator = torch.Generator().manual_seed(0)
    z0 = torch.tensor([1.5, -0.5, 0.0])
    for t in (50, 300, 900):
        noise = torch.randn(200_000, 3, generator=generator)
        z_t = schedule.q_sample(z0.expand(200_000, 3), torch.tensor(t), noise)
        alpha_bar = schedule.alpha_bars[t]
        assert torch.allclose(z_t.mean(0), alpha_bar.sqrt() * z0, atol=0.01)
        assert torch.allclose(z_t.var(0), (1 - alpha_bar).expand(3), rtol=0.02)


def test_predicted_clean_latent_inverts_the_noising(schedule):
    z0, noise = torch.randn(4, 8), torch.randn(4, 8)
    t = torch.tensor([0, 10, 200, 700])
    z_t = schedule.q_sample(z0, t, noise)
    assert torch.allclose(schedule.predict_z0(z_t, t, noise), z0, atol=1e-3)


def test_posterior_mean_through_the_clean_estimate_is_eq_33(schedule):
    z_t, epsilon, t = torch.randn(4, 6), torch.randn(4, 6), torch.tensor([3, 30, 300, 998])
    mean = schedule.posterior_mean(schedule.predict_z0(z_t, t, epsilon), z_t, t)
    alpha, alpha_bar = schedule.alphas[t, None], schedule.alpha_bars[t, None]
    eq33 = (z_t - (1 - alpha) / (1 - alpha_bar).sqrt() * epsilon) / alpha.sqrt()
    assert torch.allclose(mean, eq33, atol=1e-4)


def test_unknown_schedule_and_bad_bounds_are_input_errors():
    with pytest.raises(InputError, match="scaled_linear"):
        NoiseSchedule.build("cosine")
    with pytest.raises(InputError, match="beta_start"):
        NoiseSchedule.build("linear", 10, 0.5, 0.1)
    with pytest.raises(InputError, match="ddim_steps"):
        ddim_timesteps(100, 101)


def test_ddim_timesteps_span_the_chain_evenly():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))


class NoiseOracle(torch.nn.Module):
    """Knows the data is z_0 = 0, so z_t = √(1 − ᾱ_t) ε and ε follows exactly."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.drops = []

    def forward(self, z_t, t, exemplar, drop=None):
        self.drops.append(drop)
        return z_t / (1 - self.schedule.alpha_bars[t, None]).sqrt()


def test_loss_is_zero_for_the_true_noise_and_one_for_a_zero_guess(schedule):
    z0, exemplars = torch.zeros(4096, 16), torch.zeros(4096, 16)
    generator = torch.Generator().manual_seed(1)
    oracle = diffusion_loss(NoiseOracle(schedule), schedule, z0, exemplars,
                            cond_drop_prob=0.1, generator=generator)
    zero_guess = diffusion_loss(lambda z, t, y, drop: torch.zeros_like(z), schedule, z0,
                                exemplars, cond_drop_prob=0.1, generator=generator)
    assert oracle.item() < 1e-8
    assert zero_guess.item() == pytest.approx(1.0, abs=0.02)  # E[ε²] = 1


def test_condition_is_dropped_with_the_given_probability(schedule):
    spy = NoiseOracle(schedule)
    diffusion_loss(spy, schedule, torch.zeros(20_000, 2), torch.zeros(20_000, 2),
                   cond_drop_prob=0.1, generator=torch.Generator().manual_seed(2))
    assert spy.drops[0].float().mean().item() == pytest.approx(0.1, abs=0.01)


@pytest.fixture(scope="module")
def denoiser():
    torch.manual_seed(0)
    model = MLPUNet(latent_dim=8, widths=[32, 16], time_dim=16).eval()
    with torch.no_grad():  # a non-zero null condition, as after training
        model.null_exemplar.normal_()
    return model


def test_guided_epsilon_in_one_pass_equals_two_separate_passes(denoiser):
    z_t, cond, t = torch.randn(6, 8), torch.randn(6, 8), torch.randint(0, 1000, (6,))
    with torch.no_grad():
        guided = guided_epsilon(denoiser, z_t, t, cond, guidance_scale=1.0)
        conditional = denoiser(z_t, t, cond)
        unconditional = denoiser(z_t, t, cond, torch.ones(6, dtype=torch.bool))
    assert torch.allclose(guided, 2 * conditional - unconditional, atol=1e-5)
    assert not torch.allclose(conditional, unconditional, atol=1e-3)


def test_guided_epsilon_calls_the_denoiser_once(denoiser):
    calls = []
    handle = denoiser.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    try:
        with torch.no_grad():
            guided_epsilon(denoiser, torch.randn(5, 8), 10, torch.randn(5, 8), 1.0)
    finally:
        handle.remove()
    assert calls == [10]  # the conditional and null halves of one batch


def test_zero_guidance_is_the_plain_conditional_estimate(denoiser):
    z_t, cond = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(guided_epsilon(denoiser, z_t, 7, cond, 0.0),
                              denoiser(z_t, torch.full((3,), 7), cond))
