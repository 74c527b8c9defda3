"""The DDRM-style and DPS-style peers: exact on an oracle, consistent where they should be."""
import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError
from ddnm_edu import operators as ops
from ddnm_edu.ddrm import SpectralView, ddrm
from ddnm_edu.dps import dps

COVERED = {
    "denoise": ops.Denoising(),
    "inpaint": ops.Inpainting(ops.Inpainting.random_mask(16, 0.5, seed=0)),
    "colorize": ops.Colorization(),
    "sr4": ops.SuperResolution(4),
    "cs": ops.CompressedSensing(0.25, seed=1, block=8),
}


def images(n=2, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


@pytest.mark.parametrize("name", sorted(COVERED))
def test_spectral_view_is_an_svd(name):
    """V is orthonormal and A x = U S V^T x: the measured coordinates s_i (V^T x)_i reproduce y."""
    op = COVERED[name]
    x = images(seed=1).double()
    spec = SpectralView(op, x)
    c = spec.Vt(x)
    torch.testing.assert_close(spec.V(c), x)  # V V^T = I
    torch.testing.assert_close(c.norm(dim=1), x.flatten(1).norm(dim=1))  # orthonormal
    ys = spec.y_coords(op.A(x))
    torch.testing.assert_close(spec.s.double() * c, ys, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(COVERED))
def test_ddrm_with_oracle_recovers_x0(sched, name):
    op = COVERED[name]
    x0 = images()
    oracle = lambda x, t: sched.predict_eps(x, x0, t)  # noqa: E731
    out = ddrm(oracle, sched, op, op.A(x0), steps=20, seed=0)
    torch.testing.assert_close(out, x0, atol=1e-3, rtol=0)


def test_ddrm_noiseless_is_nearly_consistent_with_any_model(sched):
    op = COVERED["sr4"]
    x0 = images()
    y = op.A(x0)
    out = ddrm(lambda x, t: 0.3 * torch.ones_like(x), sched, op, y, steps=10)
    # DDRM's last step keeps the model's range coordinates: close to y, not exact like DDNM
    assert de.metrics.consistency(op, out, y).max() < 0.2


def test_ddrm_uncovered_operator():
    with pytest.raises(DDNMInputError, match="not Deblur"):
        SpectralView(ops.Deblur(ops.gaussian_kernel(1.0)), torch.zeros(1, 1, 16, 16))


def test_dps_with_oracle_and_reduces_misfit(sched):
    op = ops.SuperResolution(4)
    x0 = images()
    y = op.A(x0)
    oracle = lambda x, t: sched.predict_eps(x, x0, t)  # noqa: E731
    torch.testing.assert_close(dps(oracle, sched, op, y, steps=10, zeta=0.0), x0, atol=1e-3, rtol=0)
    # with a useless model, the gradient steps pull A x towards y
    blind = lambda x, t: torch.zeros_like(x) + 0 * x  # noqa: E731
    free = dps(blind, sched, op, y, steps=10, zeta=0.0)
    guided = dps(blind, sched, op, y, steps=10, zeta=1.0)
    assert (de.metrics.consistency(op, guided, y) < de.metrics.consistency(op, free, y)).all()


def test_dps_rejects_bad_step_size(sched):
    op = ops.SuperResolution(4)
    y = op.A(images())
    for bad in (-1.0, float("nan"), float("inf"), "ten"):
        with pytest.raises(DDNMInputError, match="zeta must be a finite number >= 0"):
            dps(lambda x, t: torch.zeros_like(x), sched, op, y, steps=2, zeta=bad)
