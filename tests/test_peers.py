"""The DDRM-style and DPS-style peers: exact on an oracle, consistent where they should be."""

import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError
from ddnm_edu import operators as ops
from ddnm_edu.ddrm import ddrm
from ddnm_edu.dps import dps

COVERED = {
    "denoise": ops.Denoising(),
    "inpaint": ops.Inpainting(ops.Inpainting.random_mask(16, 0.5, seed=0)),
    "colorize": ops.Colorization(),
    "sr4": ops.SuperResolution(4),
    "cs": ops.CompressedSensing(0.25, seed=1, block=8),
    # the default rcond drops the weakest frequencies of this blur (null directions of the truncated operator)
    "deblur": ops.Deblur(ops.gaussian_kernel(1.0), rcond=1e-3),
}


def images(n=2, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


@pytest.mark.parametrize("name", sorted(COVERED))
def test_operators_carry_their_svd(name):
    """V is orthonormal (unitary for the Fourier basis), A^dagger A = V diag(1[s > 0]) V^T, and the measured
    coordinates s_i (V^T x)_i reproduce U^T y."""
    op = COVERED[name]
    assert isinstance(op, ops.SVDOperator)
    x = images(seed=1).double()
    c = op.Vt(x)
    s = op.singular_values(tuple(x.shape[1:])).double()
    assert s.shape == c.shape[1:] and (s >= 0).all() and (s == 0).any() == (name != "denoise")
    torch.testing.assert_close(op.V(c), x)  # V V^T = I
    torch.testing.assert_close(c.abs().flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))  # orthonormal
    torch.testing.assert_close(op.V((s > 0) * c), op.range_part(x), atol=1e-10, rtol=0)
    torch.testing.assert_close(op.y_coords(op.A(x)), s * c, atol=1e-10, rtol=0)


def test_blur_svd_is_the_fourier_basis():
    """Deblur: s = |K(w)| (the magnitude of the kernel's DFT) on the frequencies A^dagger keeps, and A acts
    on each Fourier coefficient as multiplication by K(w)."""
    op = ops.Deblur(ops.gaussian_kernel(1.0), rcond=0.0)
    x = images(seed=2).double()
    s = op.singular_values((3, 16, 16))
    K = torch.fft.fft2(op._centred_kernel(16, 16))
    torch.testing.assert_close(s[0], K.abs())
    torch.testing.assert_close(op.Vt(op.A(x)), K * op.Vt(x))


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


def test_ddrm_uncovered_operator(sched):
    op = ops.Composite([ops.Colorization(), ops.SuperResolution(2)])
    assert not isinstance(op, ops.SVDOperator)
    with pytest.raises(DDNMInputError, match="has no closed-form SVD"):
        ddrm(lambda x, t: torch.zeros_like(x), sched, op, op.A(images()), steps=2)


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
