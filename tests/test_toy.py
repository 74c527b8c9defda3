"""The toy worlds of chapter 3: the spiral model's shapes and the mixture oracle's E[x_0 | x_t]."""

from __future__ import annotations

import pytest
import torch

import ddnm_edu as de
from ddnm_edu.errors import DDNMInputError
from ddnm_edu.toy import MixturePrior, ToyDenoiser, spiral


def test_toy_denoiser_sees_fourier_features():
    net = ToyDenoiser(octaves=3)
    x = spiral(5)
    assert net(x, torch.tensor([3, 7, 9, 1, 0])).shape == x.shape
    f = net.features(torch.tensor([[0.25, -0.5]]))
    # [x, sin(pi 2^k x) for k = 0..2 per coordinate, cos(...)]
    want_sin = torch.sin(torch.pi * torch.tensor([0.25, 0.5, 1.0, -0.5, -1.0, -2.0]))
    assert torch.allclose(f[0, :2], torch.tensor([0.25, -0.5]))
    assert torch.allclose(f[0, 2:8], want_sin, atol=1e-6)


def test_mixture_prior_is_the_conditional_mean():
    sched = de.NoiseSchedule.linear(1000)
    prior = MixturePrior(sched, means=[-0.6, 0.5], stds=[0.1, 0.2], weights=[1, 2])
    g = torch.Generator().manual_seed(0)
    x0 = prior.draw(400_000, g)
    assert abs(float((x0 > 0).double().mean()) - 2 / 3) < 0.01  # the weights
    for t in (100, 400, 800):
        z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        x_t = sched.add_noise(x0, z, t)
        best = prior.x0_mean(x_t, t)
        # binned averages of x_0 given x_t agree with the formula
        edges = torch.quantile(x_t.flatten()[::20], torch.linspace(0, 1, 31, dtype=torch.float64)[1:-1])
        b = torch.bucketize(x_t.flatten(), edges)
        count = torch.bincount(b, minlength=30)
        gap = (torch.bincount(b, x0.flatten(), 30) - torch.bincount(b, best.flatten(), 30)) / count
        assert gap.abs().max() < 0.02, t
        # and nothing nearby does better: the formula is the MMSE estimate
        mse = (best - x0).pow(2).mean()
        assert mse < (best * 0.9 - x0).pow(2).mean() and mse < (best + 0.03 - x0).pow(2).mean()
        # the oracle's eps and its x0 agree through x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps
        ab = sched.alphas_cumprod[t].double()
        assert torch.allclose(sched.predict_x0(x_t, prior(x_t, t), t), best)
        assert torch.allclose(x_t, ab.sqrt() * best + (1 - ab).sqrt() * prior(x_t, t))
    # one mode of a mixture is the Gaussian oracle
    one = MixturePrior(sched, means=[0.2], stds=[0.5])
    xt = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(9, 1, 1, 1)
    assert torch.allclose(one.x0_mean(xt, 300), de.toy.GaussianPrior(sched, 0.2, 0.5).x0_mean(xt, 300))
    with pytest.raises(DDNMInputError):
        MixturePrior(sched, means=[0.0, 1.0], stds=[0.1])
