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


def _model(x, t):  # a deterministic stand-in for the network: depends on x and t
    return 0.4 * x + 0.05 * torch.sin(3 * x) + 1e-4 * t.reshape(-1, 1, 1, 1)


def test_ddrm_step_is_the_books_equation(sched):
    """Chapter 11's DDRM box, written out per direction in V's coordinates, against ``ddrm``: unseen
    directions, measured ones noisier than y (s sigma_s > sigma_y) and quieter ones all occur here."""
    op, sigma_y, eta, eta_b, steps = ops.Colorization(), 0.1, 0.85, 1.0, 8
    x0 = images(2, seed=3)
    y = op.A(x0) + sigma_y * torch.randn(op.A(x0).shape, generator=torch.Generator().manual_seed(9))
    want = ddrm(_model, sched, op, y, sigma_y=sigma_y, steps=steps, eta=eta, eta_b=eta_b, seed=5)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(x0.shape, generator=g)
    s = op.singular_values(tuple(x0.shape[1:]))
    y_bar = s * op.Vt(op.A_pinv(y))  # U^T y at the measured coordinates: s_i (V^T A^+ y)_i
    branches = set()
    for t, t_next in sched.timestep_pairs(steps):
        z = torch.randn(x.shape, generator=g)
        ab_s = float(sched.alphas_cumprod[t_next]) if t_next >= 0 else 1.0
        sig = (1 - ab_s) ** 0.5 / ab_s**0.5  # sigma_s, the noise level of x_s / sqrt(ab_s)
        eps = _model(x, torch.full((len(x),), t))
        shape = op.Vt(x).shape
        c0, ce = op.Vt(sched.predict_x0(x, eps, t).clamp(-1, 1)).flatten(1), op.Vt(eps).flatten(1)
        cz, yb = z.reshape(len(x), -1), y_bar.flatten(1)
        c = torch.empty_like(c0)
        for i in range(c0.shape[1]):  # one coordinate of V^T x at a time, as the box's cases
            si = float(s.flatten()[i])
            if si == 0:
                c[:, i] = c0[:, i] + (1 - eta**2) ** 0.5 * sig * ce[:, i] + eta * sig * cz[:, i]
                branches.add("unseen")
            elif si * sig > sigma_y:
                var = sig**2 - eta_b**2 * sigma_y**2 / si**2
                c[:, i] = eta_b * yb[:, i] / si + (1 - eta_b) * c0[:, i] + max(var, 0) ** 0.5 * cz[:, i]
                branches.add("noisier than y")
            else:
                c[:, i] = c0[:, i] + (1 - eta**2) ** 0.5 * sig * (yb[:, i] - si * c0[:, i]) / sigma_y
                c[:, i] += eta * sig * cz[:, i]
                branches.add("quieter than y")
        x = ab_s**0.5 * op.V(c.reshape(shape))
    assert branches == {"unseen", "noisier than y", "quieter than y"}
    torch.testing.assert_close(x, want, atol=1e-5, rtol=0)


def test_dps_step_is_the_books_equation(sched):
    """Chapter 11's DPS box: a DDIM step with x0|t, then x_s <- x_s - zeta grad_{x_t} ||y - A x0|t(x_t)||."""
    op, zeta, eta, steps = ops.SuperResolution(4), 3.0, 0.85, 4
    y = op.A(images(2, seed=4))
    want = dps(_model, sched, op, y, steps=steps, zeta=zeta, eta=eta, seed=2)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(op.A_pinv(y).shape, generator=g)
    for t, t_next in sched.timestep_pairs(steps):
        z = torch.randn(x.shape, generator=g)
        x_in = x.detach().requires_grad_(True)
        eps = _model(x_in, torch.full((len(x),), t))
        x0_t = (x_in - (1 - sched.alphas_cumprod[t]).sqrt() * eps) / sched.alphas_cumprod[t].sqrt()
        misfit = (y - op.A(x0_t)).flatten(1).norm(dim=1).sum()  # one norm per image
        (grad,) = torch.autograd.grad(misfit, x_in)
        ab_s = sched.alphas_cumprod[t_next] if t_next >= 0 else torch.tensor(1.0, dtype=torch.float64)
        sigma = eta * (1 - ab_s).sqrt()  # the book's DDIM convention (chapter 4)
        x0c, e = x0_t.detach().clamp(-1, 1), eps.detach()
        x = ab_s.sqrt() * x0c + (1 - ab_s - sigma**2).sqrt() * e + sigma * z - zeta * grad
        x = x.float()
    torch.testing.assert_close(x, want, atol=1e-5, rtol=0)
