"""K restorations in one batch: equal to K seeded runs, spread only in the null space, and a
calibration measure that is right on an oracle prior and notices a sampler that is not."""

from __future__ import annotations

import math

import pytest
import torch

import ddnm_edu as de
from ddnm_edu.rng import spawn
from ddnm_edu import operators as ops
from ddnm_edu.posterior import _spearman, calibrated_coverage

SCHED = de.NoiseSchedule.linear(1000)
EXACT = de.SamplerSettings(kind="ddpm", eta=1.0, clip_x0=False)


def _oracle_problem(n=16, size=16):
    prior = de.toy.GaussianPrior(SCHED, mean=0.0, std=0.5)
    op = ops.Inpainting(ops.Inpainting.random_mask(size, 0.5, seed=1))
    x = 0.5 * torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(0))
    return prior, op, x, op.A(x)


def test_k_samples_are_k_seeded_runs_oracle():
    prior, op, x, y = _oracle_problem(n=3, size=8)
    s = de.posterior_samples(prior, SCHED, op, y, k=4, steps=20, seed=7, settings=EXACT)
    assert s.samples.shape == (3, 4, 1, 8, 8) and s.nfe == 20
    for i in range(3):
        for j in range(4):
            gen = spawn(7, "image", i, "sample", j)  # sample j of image i has its own stream
            alone = de.ddnm_plus(prior, SCHED, op, y[i : i + 1], steps=20, generator=gen, settings=EXACT).x0_hat
            assert torch.equal(s.samples[i, j], alone[0])
    assert not torch.equal(s.samples[0, 0], s.samples[0, 1])  # different streams, different samples
    # the streams are keyed by the image's index in a larger set: image 2 alone, as image 2
    again = de.posterior_samples(prior, SCHED, op, y[2:], k=4, steps=20, seed=7, settings=EXACT, image_ids=[2])
    assert torch.equal(again.samples[0], s.samples[2])


def test_k_samples_are_k_seeded_runs_unet_and_spread_is_null():
    model = de.load_pretrained("fashion-mnist-32")
    op = ops.SuperResolution(4)
    x = de.data.load("fashion-mnist", "test", n=2)
    y = op.A(x)
    s = de.posterior_samples(model, SCHED, op, y, k=3, steps=5)
    alone = de.ddnm(model, SCHED, op, y[1:2], steps=5, generator=spawn(0, "image", 1, "sample", 2))
    assert torch.allclose(s.samples[1, 2], alone[0], atol=1e-5)
    rng, null = s.spread_parts(op)
    assert rng.abs().max() < 1e-5  # every sample has A x = y: no spread in the range part
    assert null.mean() > 0.01  # ... all of it is in the null part
    assert torch.allclose(s.std, s.samples.std(1)) and torch.allclose(s.mean, s.samples.mean(1))


def test_calibration_is_right_on_an_oracle_and_notices_an_underdispersed_sampler():
    prior, op, x, y = _oracle_problem()
    exact = de.posterior_samples(prior, SCHED, op, y, k=64, steps=1000, settings=EXACT).calibration(x)
    # DDPM with the exact noise prediction samples the posterior (here: the prior on the holes)
    assert exact["expected"] == pytest.approx(0.9484, abs=1e-4)  # Student t, 63 dof
    assert abs(exact["coverage"] - exact["expected"]) < 0.015  # within ~3 Monte-Carlo errors
    assert exact["uncertain"] == pytest.approx(float(1 - op.mask.mean()), abs=1e-6)  # the holes only
    # all noise fresh and no eps (eta = 1 in the DDNM code's convention): the spread is too small
    narrow = de.SamplerSettings(kind="ddim", eta=1.0, clip_x0=False)
    under = de.posterior_samples(prior, SCHED, op, y, k=64, steps=50, settings=narrow).calibration(x)
    assert under["coverage"] < exact["expected"] - 0.05
    # fewer steps under-disperse too, even DDPM's; and so does the book's default eta = 0.85 (ch12 says so)
    for settings in (EXACT, de.SamplerSettings(eta=0.85, clip_x0=False)):
        short = de.posterior_samples(prior, SCHED, op, y, k=64, steps=50, settings=settings).calibration(x)
        assert short["coverage"] < exact["expected"] - 0.015, settings


def test_calibrated_coverage_is_students_t():
    """Closed forms of P(|T_nu| <= z): nu = 1 (Cauchy) 2/pi atan z, nu = 2 z / sqrt(2 + z^2); the
    Gaussian erf(z / sqrt 2) as K grows; and a Monte-Carlo draw of the definition at K = 8."""
    for k, exact in ((2, lambda z: 2 / math.pi * math.atan(z)), (3, lambda z: z / math.sqrt(2 + z * z))):
        for width in (0.5, 2.0, 3.0):
            z = width / math.sqrt(1 + 1 / k)
            assert calibrated_coverage(width, k) == pytest.approx(exact(z), abs=1e-9)
    assert calibrated_coverage(2.0, 10**6) == pytest.approx(math.erf(2 / math.sqrt(2)), abs=1e-5)
    g = torch.Generator().manual_seed(0)
    draws = torch.randn(200_000, 9, generator=g, dtype=torch.float64)  # x, then K = 8 samples
    s = draws[:, 1:]
    inside = ((draws[:, 0] - s.mean(1)).abs() <= 2 * s.std(1)).double().mean().item()
    assert inside == pytest.approx(calibrated_coverage(2.0, 8), abs=0.003)  # ~4 MC errors
    assert abs(inside - math.erf(2 / math.sqrt(2))) > 0.03  # the Gaussian value would be wrong


def test_spearman_and_bad_input():
    a = torch.arange(10.0)
    assert _spearman(a, 2 * a + 1) == pytest.approx(1.0) and _spearman(a, -a) == pytest.approx(-1.0)
    prior, op, x, y = _oracle_problem(n=2, size=8)
    with pytest.raises(de.DDNMInputError, match="k must be"):
        de.posterior_samples(prior, SCHED, op, y, k=0, steps=2)
    with pytest.raises(de.DDNMInputError, match="one per image"):
        de.ddnm_plus(prior, SCHED, op, y, steps=2, generator=[torch.Generator() for _ in range(3)])
    with pytest.raises(de.DDNMInputError, match="one per image"):
        de.posterior_samples(prior, SCHED, op, y, k=2, steps=2, image_ids=[0])
    one = de.posterior_samples(prior, SCHED, op, y, k=1, steps=2)
    with pytest.raises(de.DDNMInputError, match="k >= 2"):
        one.std
