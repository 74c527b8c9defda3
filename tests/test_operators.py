"""Operators at small shapes: dense matrices, Penrose conditions, range/null projectors."""

import numpy as np
import pytest
import torch

import ddnm_edu as de
from ddnm_edu import DDNMInputError
from ddnm_edu import operators as ops

CASES = {
    "sr2": (lambda: ops.SuperResolution(2), (1, 4, 4)),
    "sr4-rgb": (lambda: ops.SuperResolution(4), (3, 4, 8)),
    "inpaint-random": (lambda: ops.Inpainting(ops.Inpainting.random_mask(4, 0.5, seed=3)), (2, 4, 4)),
    "inpaint-box": (lambda: ops.Inpainting(ops.Inpainting.box_mask(6, 2)), (1, 6, 6)),
    "colorize": (lambda: ops.Colorization(), (3, 3, 4)),
    "denoise": (lambda: ops.Denoising(), (1, 3, 3)),
    "cs": (lambda: ops.CompressedSensing(0.25, seed=1, block=4), (2, 4, 8)),
    "cs-10%": (lambda: ops.CompressedSensing(0.1, seed=2, block=8), (1, 8, 8)),
    "deblur": (lambda: ops.Deblur(ops.gaussian_kernel(0.8, 3)), (1, 6, 6)),
    "colorize+sr2": (lambda: ops.Composite([ops.Colorization(), ops.SuperResolution(2)]), (3, 4, 4)),
}
MOORE_PENROSE = ["sr2", "sr4-rgb", "inpaint-random", "inpaint-box", "colorize", "denoise", "cs", "cs-10%", "deblur"]


def _x(shape, n=3, seed=0):
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(CASES))
def test_as_matrix_agrees_with_A(name):
    make, shape = CASES[name]
    op = make()
    M = op.as_matrix(shape)
    x = _x(shape)
    torch.testing.assert_close(op.A(x).reshape(len(x), -1), x.reshape(len(x), -1) @ M.T, atol=1e-12, rtol=0)
    P = op.pinv_matrix(shape)
    y = op.A(x)
    torch.testing.assert_close(op.A_pinv(y).reshape(len(x), -1), y.reshape(len(x), -1) @ P.T, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_generalised_inverse(name):
    """A A^dagger A = A (what DDNM needs) for every operator on the list."""
    make, shape = CASES[name]
    M, P = make().as_matrix(shape), make().pinv_matrix(shape)
    torch.testing.assert_close(M @ P @ M, M, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", MOORE_PENROSE)
def test_moore_penrose_matches_numpy(name):
    make, shape = CASES[name]
    op = make()
    M, P = op.as_matrix(shape).numpy(), op.pinv_matrix(shape).numpy()
    np.testing.assert_allclose(P, np.linalg.pinv(M), atol=1e-9)
    assert op.check_pinv(shape).moore_penrose


@pytest.mark.parametrize("name", sorted(CASES))
def test_range_null_decomposition(name):
    make, shape = CASES[name]
    op = make()
    x = _x(shape, seed=5)
    r, n = op.range_part(x), op.null_part(x)
    torch.testing.assert_close(r + n, x, atol=1e-12, rtol=0)  # x = A+A x + (I - A+A) x
    assert op.A(n).abs().max() < 1e-10  # null part is invisible to A
    torch.testing.assert_close(op.range_part(r), r, atol=1e-10, rtol=0)  # projectors are idempotent
    torch.testing.assert_close(op.null_part(n), n, atol=1e-10, rtol=0)
    # DDNM's rectification with the true y keeps the null part of x0_t and the range part of x
    x0_t = _x(shape, seed=6)
    x_hat = op.project(x0_t, op.A(x))
    torch.testing.assert_close(op.A(x_hat), op.A(x), atol=1e-10, rtol=0)
    torch.testing.assert_close(op.null_part(x_hat), op.null_part(x0_t), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", MOORE_PENROSE)
def test_orthogonal_projectors(name):
    """For a Moore-Penrose inverse, range and null parts are orthogonal."""
    make, shape = CASES[name]
    op = make()
    x = _x(shape, seed=8)
    inner = (op.range_part(x) * op.null_part(x)).flatten(1).sum(1)
    assert inner.abs().max() < 1e-9


@pytest.mark.parametrize("name", sorted(CASES))
def test_adjoint(name):
    """<A x, y> = <x, A^T y>."""
    make, shape = CASES[name]
    op = make()
    x = _x(shape, seed=11)
    y = op.A(_x(shape, seed=12))
    lhs = (op.A(x) * y).flatten(1).sum(1)
    rhs = (x * op.A_adjoint(y)).flatten(1).sum(1)
    torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=0)
    torch.testing.assert_close(
        op.A_adjoint(y), op.as_matrix(shape).T.matmul(y.reshape(len(y), -1).T).T.reshape(x.shape), atol=1e-10, rtol=0
    )


def test_colorization_matrices():
    op = ops.Colorization()
    M = op.as_matrix((3, 1, 1))
    torch.testing.assert_close(M, torch.full((1, 3), 1 / 3, dtype=torch.float64))
    torch.testing.assert_close(op.pinv_matrix((3, 1, 1)), torch.ones(3, 1, dtype=torch.float64))


def test_sr_pinv_is_block_replication():
    y = torch.arange(4.0).reshape(1, 1, 2, 2)
    x = ops.SuperResolution(2).A_pinv(y)
    assert x[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_cs_rows_orthonormal_and_ratio():
    op = ops.CompressedSensing(0.25, seed=0, block=8)
    assert op.m == 16
    torch.testing.assert_close(op.Phi @ op.Phi.T, torch.eye(16, dtype=torch.float64), atol=1e-12, rtol=0)
    y = op.A(torch.zeros(2, 3, 16, 32))
    assert y.shape == (2, 3 * 16, 2, 4)


def test_deblur_truncation_reported():
    """A wide blur with a truncated inverse breaks A A+ A = A slightly; check_pinv says so and warns."""
    op = ops.Deblur(ops.gaussian_kernel(2.0, 7), rcond=1e-2)
    with pytest.warns(UserWarning, match="not be consistent"):
        rep = op.check_pinv((1, 8, 8))
    assert not rep.consistent
    assert rep.errors["A X A = A"] < 1e-2  # bounded by rcond * max|K|
    exact = ops.Deblur(ops.gaussian_kernel(2.0, 7), rcond=0.0).check_pinv((1, 8, 8), atol=1e-6, warn=False)
    assert exact.consistent


def test_composite_block_aligned_mask_keeps_consistency():
    """Mask constant on the pooling blocks: the reverse-order rule still gives A A+ A = A."""
    mask = torch.tensor([[1, 0], [0, 1]], dtype=torch.float64).repeat_interleave(2, 0).repeat_interleave(2, 1)
    op = ops.Composite([ops.Inpainting(mask), ops.SuperResolution(2)])
    rep = op.check_pinv((1, 4, 4))
    assert rep.consistent
    # here A = D' P with a low-res mask D' that commutes with pooling, so the rule is even Moore-Penrose
    assert rep.moore_penrose
    M, P = op.as_matrix((1, 4, 4)), op.pinv_matrix((1, 4, 4))
    torch.testing.assert_close(P, torch.linalg.pinv(M), atol=1e-10, rtol=0)


def test_composite_pixel_mask_breaks_consistency():
    """A pixel mask followed by pooling: A1+ A2+ is not a generalised inverse of A2 A1; the check catches it."""
    mask = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.float64)
    op = ops.Composite([ops.Inpainting(mask), ops.SuperResolution(2)])
    with pytest.warns(UserWarning, match="not be consistent"):
        rep = op.check_pinv((1, 4, 4))
    assert not rep.consistent
    # a block with k of 4 pixels observed gives A A+ A = (k/4) A there: error (1 - 3/4) / 4 = 1/16
    assert rep.errors["A X A = A"] == pytest.approx(1 / 16)
    # the true Moore-Penrose inverse of the composite does satisfy it
    M = op.as_matrix((1, 4, 4))
    P = torch.linalg.pinv(M)
    torch.testing.assert_close(M @ P @ M, M, atol=1e-10, rtol=0)
    # and the samplers' matrix-free probe sees the same failure
    assert op.consistency_probe(torch.zeros(1, 1, 4, 4, dtype=torch.float64)) > 0.05


def test_operators_run_on_float32_and_keep_dtype():
    x = torch.randn(2, 3, 32, 32)
    for op in [
        ops.SuperResolution(4),
        ops.Colorization(),
        ops.CompressedSensing(0.25),
        ops.Deblur(ops.gaussian_kernel(1.0)),
        ops.Inpainting(ops.Inpainting.random_mask(32)),
    ]:
        assert op.A_pinv(op.A(x)).dtype == torch.float32


# --- bad input: a clear error naming the problem and the fix -----------------------------------
def test_sr_size_not_divisible():
    with pytest.raises(DDNMInputError, match="not divisible by the scale 4.*crop or pad"):
        ops.SuperResolution(4).A(torch.zeros(1, 1, 30, 32))


def test_colorization_needs_three_channels():
    with pytest.raises(DDNMInputError, match="1 channel.*3 are needed"):
        ops.Colorization().A(torch.zeros(1, 1, 8, 8))


def test_mask_shape_mismatch():
    op = ops.Inpainting(torch.ones(16, 16))
    with pytest.raises(DDNMInputError, match="mask shape .* does not match"):
        op.A(torch.zeros(1, 1, 32, 32))


def test_mask_must_be_binary():
    with pytest.raises(DDNMInputError, match="only 0 .* and 1"):
        ops.Inpainting(torch.full((4, 4), 0.5))


def test_nan_is_refused_where_images_enter():
    """The maps check shapes only (they run at every sampler step); NaN is refused by measure and
    the samplers, with one line naming the tensor."""
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    op = ops.SuperResolution(2)
    with pytest.raises(DDNMInputError, match="x contains 1 NaN"):
        op.measure(x, 0.1)
    y = op.A(x)
    assert torch.isnan(y).any()  # the map itself passes NaN through, as a matrix would
    sched = de.NoiseSchedule.linear(10)
    with pytest.raises(DDNMInputError, match="y contains 1 NaN"):
        de.ddnm(lambda x_t, t: torch.zeros_like(x_t), sched, op, y, steps=2)


def test_not_a_batch():
    with pytest.raises(DDNMInputError, match=r"\(B, C, H, W\)"):
        ops.SuperResolution(2).A(torch.zeros(8, 8))


def test_bad_constructor_values():
    with pytest.raises(DDNMInputError):
        ops.SuperResolution(0)
    with pytest.raises(DDNMInputError, match="ratio"):
        ops.CompressedSensing(1.5)
    with pytest.raises(DDNMInputError, match="block"):
        ops.CompressedSensing(0.5, block=6)
    with pytest.raises(DDNMInputError, match="not divisible by the CS block"):
        ops.CompressedSensing(0.5, block=8).A(torch.zeros(1, 1, 12, 12))
    with pytest.raises(DDNMInputError, match="non-empty list"):
        ops.Composite([])


def test_pinv_warnings_name_the_readers_line(sched):
    """The A A^dagger A != A warnings point at the caller's code, not at torch's no_grad decorator."""
    import warnings

    import ddnm_edu as de

    op = ops.Deblur(ops.gaussian_kernel(1.0), rcond=1e-3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        de.ddnm(lambda x, t: torch.zeros_like(x), sched, op, op.A(torch.zeros(1, 1, 32, 32)), steps=1)
        op.check_pinv((1, 32, 32))
    assert len(caught) == 2 and {w.filename for w in caught} == {__file__}, [(w.filename, w.lineno) for w in caught]


# --- one home for the named tasks and for the measurement -----------------------------------------
def test_every_named_task_builds_its_operator():
    """operators.TASKS is the one table from a task name to A, sigma_y and what it is (CLI, evaluation,
    specialists, tests): sigma_y is a field, the noisy tasks share their base task's A."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for name in ops.TASKS:
        extra = {"mask": ops.Inpainting.box_mask(32, 8)} if name == "inpaint" else {}
        op = ops.from_name(name, **extra)
        xin = x if name == "colorize" else x[:, :1]
        assert torch.isfinite(op.A_pinv(op.A(xin))).all(), name
    assert isinstance(ops.from_name("sr4"), ops.SuperResolution) and ops.from_name("sr4").scale == 4
    assert ops.from_name("deblur-gauss1").rcond == 1e-3
    assert torch.equal(ops.from_name("inpaint-box12").mask, ops.Inpainting(ops.Inpainting.box_mask(32, 12)).mask)
    assert ops.get_task("sr4-noisy0.1").sigma_y == 0.1 and ops.get_task("cs25").sigma_y == 0.0
    assert ops.get_task("denoise-noisy0.2").sigma_y == 0.2  # the denoising specialist's task
    assert isinstance(ops.from_name("cs25-noisy0.2"), ops.CompressedSensing)
    for name, task in ops.TASKS.items():  # a noisy task is its base task's A with its own sigma_y
        if "-noisy" in name:
            base = name.split("-noisy")[0]
            assert task.build is ops.TASKS[base].build and task.sigma_y == float(name.split("-noisy")[1])
    from ddnm_edu.tools.cli import TASKS as CLI_TASKS

    assert CLI_TASKS == ("sr2", "sr4", "inpaint", "colorize", "deblur", "denoise")
    with pytest.raises(DDNMInputError, match="unknown task 'sr3'; available: sr2, sr4"):
        ops.from_name("sr3")
    with pytest.raises(DDNMInputError, match="needs a mask"):
        ops.from_name("inpaint")


def test_measure_is_y_equals_A_x_plus_sigma_n():
    """op.measure(x, sigma_y, seed=...): y = A x + sigma_y n with n from the stream spawn(seed, "measure")
    (or from the generator given)."""
    from ddnm_edu.rng import spawn

    op = ops.SuperResolution(2)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    n = torch.randn(2, 1, 4, 4, generator=spawn(7, "measure"))
    torch.testing.assert_close(op.measure(x, 0.3, seed=7), op.A(x) + 0.3 * n, rtol=0, atol=0)
    assert torch.equal(op.measure(x, 0.0, seed=7), op.A(x))
    g = spawn(7, "measure")  # a generator continues where it is
    assert torch.equal(op.measure(x, 0.3, generator=g), op.measure(x, 0.3, seed=7))
    assert not torch.equal(op.measure(x, 0.3, generator=g), op.measure(x, 0.3, seed=7))
    with pytest.raises(TypeError):
        op.measure(x, 0.3, 7)  # the seed is a keyword
    y64 = op.measure(x.double(), 0.3, seed=7)
    assert y64.dtype == torch.float64
