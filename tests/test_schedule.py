"""The forward process and the posterior: closed forms checked numerically (DDPM eq. 2, 4, 6, 7, 11)."""

import math

import pytest
import torch

from ddnm_edu import DDNMInputError, NoiseSchedule


def test_linear_schedule_endpoints(sched):
    assert sched.T == 1000
    assert sched.betas[0].item() == pytest.approx(1e-4)
    assert sched.betas[-1].item() == pytest.approx(0.02)
    # alpha_bar_t = prod alpha_i, computed independently in log space
    ab = torch.exp(torch.cumsum(torch.log1p(-sched.betas), 0))
    torch.testing.assert_close(sched.alphas_cumprod, ab, rtol=1e-12, atol=0)
    assert 0 < sched.alphas_cumprod[-1] < 1e-4  # almost pure noise at t = T-1


def test_cosine_schedule_matches_its_formula():
    s = NoiseSchedule.cosine(100)
    f = lambda u: math.cos((u / 100 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 10, 50, 90):
        assert s.alphas_cumprod[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-9)


def test_add_noise_moments_monte_carlo(sched, gen):
    """q(x_t | x_0) = N(sqrt(ab) x0, (1 - ab) I): sample mean and variance match."""
    n = 200_000
    x0 = torch.tensor([0.7, -0.3], dtype=torch.float64).reshape(1, 2, 1, 1).expand(n, 2, 1, 1)
    for t in (0, 100, 500, 999):
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        x_t = sched.add_noise(x0, eps, t)
        ab = sched.alphas_cumprod[t].item()
        mean, var = x_t.mean(0).flatten(), x_t.var(0).flatten()
        se_mean = math.sqrt((1 - ab) / n)
        torch.testing.assert_close(
            mean, math.sqrt(ab) * torch.tensor([0.7, -0.3], dtype=torch.float64), atol=5 * se_mean, rtol=0
        )
        torch.testing.assert_close(
            var, torch.full((2,), 1 - ab, dtype=torch.float64), atol=5 * (1 - ab) * math.sqrt(2 / n), rtol=0
        )


def test_composed_single_steps_match_closed_form(sched, gen):
    """Applying q(x_s | x_{s-1}) for s = 0..t gives the distribution q(x_t | x_0)."""
    n, t = 100_000, 40
    x0 = torch.full((n, 1, 1, 1), 0.9, dtype=torch.float64)
    x = x0
    for s in range(t + 1):
        x = sched.q_step(x, torch.randn(x.shape, generator=gen, dtype=torch.float64), s)
    ab = sched.alphas_cumprod[t].item()
    assert x.mean().item() == pytest.approx(math.sqrt(ab) * 0.9, abs=5 * math.sqrt((1 - ab) / n))
    assert x.var().item() == pytest.approx(1 - ab, abs=5 * (1 - ab) * math.sqrt(2 / n))
    # and the closed form's samples have the same law: compare quantiles too
    direct = sched.add_noise(x0, torch.randn(x0.shape, generator=gen, dtype=torch.float64), t)
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
    torch.testing.assert_close(torch.quantile(x.flatten(), q), torch.quantile(direct.flatten(), q), atol=0.01, rtol=0)


def test_predict_x0_inverts_add_noise(sched, gen):
    x0 = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    x_t = sched.add_noise(x0, eps, t)
    torch.testing.assert_close(sched.predict_x0(x_t, eps, t), x0, atol=1e-9, rtol=0)
    torch.testing.assert_close(sched.predict_eps(x_t, x0, t), eps, atol=1e-9, rtol=0)


def test_posterior_mean_two_forms_agree(sched, gen):
    """mu~(x_t, x_0) (eq. 7) equals the eps form (eq. 11) when x_0 is predicted from the same eps."""
    x0 = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    for t in (1, 37, 400, 999):
        x_t = sched.add_noise(x0, eps, t)
        torch.testing.assert_close(
            sched.posterior_mean(x0, x_t, t), sched.posterior_mean_eps(x_t, eps, t), atol=1e-10, rtol=0
        )


@pytest.mark.parametrize("t", [1, 5, 250, 999])
def test_posterior_is_the_gaussian_product(sched, t):
    """q(x_{t-1}|x_t,x_0) is proportional to q(x_t|x_{t-1}) q(x_{t-1}|x_0): complete the square numerically."""
    x0, x_t = 0.4, -0.8
    a, ab_prev = sched.alphas[t].item(), sched.alphas_cumprod[t - 1].item()
    # log-density in x = x_{t-1} on a grid, normalise, read off mean and variance
    x = torch.linspace(-6, 6, 400_001, dtype=torch.float64)
    logp = -((x_t - math.sqrt(a) * x) ** 2) / (2 * (1 - a)) - (x - math.sqrt(ab_prev) * x0) ** 2 / (2 * (1 - ab_prev))
    w = torch.exp(logp - logp.max())
    w = w / w.sum()
    mean = (w * x).sum().item()
    var = (w * (x - mean) ** 2).sum().item()
    like = torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    mu = sched.posterior_mean(like + x0, like + x_t, t).item()
    assert mean == pytest.approx(mu, abs=1e-6)
    assert var == pytest.approx(sched.posterior_variance(t).item(), rel=1e-4)


def test_skipped_posterior_reduces_to_one_step(sched):
    like = torch.zeros(1, dtype=torch.float64)
    for t in (3, 700):
        a = sched.posterior_coefs(t, like)
        b = sched.posterior_coefs(t, like, t - 1)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v)


def test_forward_jump_matches_closed_form(sched, gen):
    n = 100_000
    x0 = torch.full((n, 1, 1, 1), -0.5, dtype=torch.float64)
    x_s = sched.add_noise(x0, torch.randn(x0.shape, generator=gen, dtype=torch.float64), 100)
    x_t = sched.forward_jump(x_s, 100, 600, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
    ab = sched.alphas_cumprod[600].item()
    assert x_t.mean().item() == pytest.approx(math.sqrt(ab) * -0.5, abs=5 * math.sqrt(1 / n))
    assert x_t.var().item() == pytest.approx(1 - ab, rel=0.02)


def test_timesteps_leading_spacing(sched):
    ts = sched.timesteps(10)
    assert ts == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert sched.timestep_pairs(4)[-1] == (0, -1)
    assert sched.timesteps(1000) == list(range(999, -1, -1))


def test_ddpm_step_variance_is_posterior_variance(sched, gen):
    """kind='ddpm' samples N(mu~, beta~): Monte-Carlo check of the step's mean and variance."""
    n, t = 100_000, 300
    x0 = torch.full((n, 1, 1, 1), 0.25, dtype=torch.float64)
    eps = torch.full_like(x0, 0.3)
    x_t = sched.add_noise(x0, eps, t)
    out = sched.step(
        eps, t, x_t, eta=1.0, kind="ddpm", noise=torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    )
    assert out.mean().item() == pytest.approx(sched.posterior_mean(x0[:1], x_t[:1], t).item(), abs=1e-3)
    assert out.var().item() == pytest.approx(sched.posterior_variance(t).item(), rel=0.02)


def test_bad_schedule_inputs():
    with pytest.raises(DDNMInputError, match="between 1 and"):
        NoiseSchedule.linear(100).timesteps(0)
    with pytest.raises(DDNMInputError, match="out of range"):
        NoiseSchedule.linear(100).add_noise(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 100)
    with pytest.raises(DDNMInputError, match="unknown step kind"):
        NoiseSchedule.linear(100).step_coefs(5, 4, 0.0, kind="euler")
    with pytest.raises(DDNMInputError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))
