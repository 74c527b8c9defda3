"""Self-checks for your own answers to the book's exercises.

Call one on your attempt: it prints a short confirmation when the answer is right and otherwise
raises :class:`CheckFailed` (an ``AssertionError``) whose message says *what* is wrong and by how
much -- which Penrose condition fails, whether the mean or the variance is off -- rather than a bare
``assert``. The auto-graded tests of the classroom edition (``ddnm_edu.tools.classroom``) call the same
functions, so a reader and a grader get the same verdict::

    import ddnm_edu as de
    de.check.pinv(my_pinv, A)            # the four Penrose conditions, one by one
    de.check.posterior(mu, var, sched, x0, x_t, t)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .linalg import penrose_errors


class CheckFailed(AssertionError):
    """Your answer is not right yet; the message says how."""


def _t(v: Any, name: str) -> Tensor:
    if isinstance(v, Tensor):
        return v.detach().cpu().double()
    try:
        return torch.as_tensor(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a number, an array or a tensor, not {type(v).__name__}.") from None


def _ok(msg: str, quiet: bool) -> bool:
    if not quiet:
        print(f"OK: {msg}")
    return True


def close(
    value: Any, expected: Any, name: str = "your value", atol: float = 1e-6, rtol: float = 1e-6, quiet: bool = False
) -> bool:
    """``value`` equals ``expected`` (numbers, arrays or tensors) within atol + rtol * |expected|."""
    if value is None:
        raise CheckFailed(f"{name} is None: assign your answer to it first.")
    v, e = _t(value, name), _t(expected, "expected")
    if v.shape != e.shape:
        raise CheckFailed(f"{name} has shape {tuple(v.shape)} but should have shape {tuple(e.shape)}.")
    if not torch.isfinite(v).all():
        raise CheckFailed(f"{name} contains NaN or infinite values.")
    err = (v - e).abs()
    bad = err > atol + rtol * e.abs()
    if bad.any():
        i = int(err.flatten().argmax())
        raise CheckFailed(
            f"{name} is off at {int(bad.sum())} of {bad.numel()} entries; the largest error is "
            f"{float(err.flatten()[i]):.3g} (you have {float(v.flatten()[i]):.6g}, expected "
            f"{float(e.flatten()[i]):.6g})."
        )
    return _ok(f"{name} is right.", quiet)


def _matrix(A: Any, shape: tuple[int, ...] | None) -> Tensor:
    from .operators import LinearOperator

    if isinstance(A, LinearOperator):
        if shape is None:
            raise CheckFailed("for an operator, pass the image shape too, e.g. shape=(1, 4, 4).")
        return A.as_matrix(shape)
    return _t(A, "A")


PENROSE = ("A X A = A", "X A X = X", "(A X)^T = A X", "(X A)^T = X A")  # penrose_errors' keys


def pinv(X: Any, A: Any, shape: tuple[int, ...] | None = None, atol: float = 1e-8, quiet: bool = False) -> bool:
    """``X`` is the Moore-Penrose inverse of ``A`` (a matrix, or a ``LinearOperator`` with ``shape``).

    Checks the shape (n x m for an m x n A) and the four Penrose conditions one by one; a failure names
    each condition that fails with its largest error, and says what satisfying only some of them means.
    """
    M = _matrix(A, shape)
    Xt = _t(X, "your pseudo-inverse")
    if Xt.ndim != 2 or Xt.shape != (M.shape[1], M.shape[0]):
        raise CheckFailed(
            f"your pseudo-inverse has shape {tuple(Xt.shape)}; for A of shape {tuple(M.shape)} it "
            f"must be {M.shape[1]} x {M.shape[0]} (columns of A become rows)."
        )
    errs = penrose_errors(M, Xt)
    scale = max(1.0, float(M.abs().max()), float(Xt.abs().max()))
    failing = {k: v for k, v in errs.items() if v > atol * scale}
    if failing:
        lines = [f"  condition {PENROSE.index(k) + 1}, {k}: fails, largest error {v:.3g}" for k, v in failing.items()]
        hint = (
            "It is not even a generalised inverse (condition 1), so A x_hat = y would not hold."
            if PENROSE[0] in failing
            else "Condition 1 holds: it is a generalised inverse (enough for consistency) "
            "but not the Moore-Penrose one."
        )
        raise CheckFailed("not the Moore-Penrose inverse:\n" + "\n".join(lines) + "\n" + hint)
    return _ok("all four Penrose conditions hold: this is the Moore-Penrose inverse.", quiet)


def null_basis(basis: Any, A: Any, atol: float = 1e-8, quiet: bool = False) -> bool:
    """The columns of ``basis`` form a basis of the null space of the matrix ``A``."""
    M, B = _t(A, "A"), _t(basis, "your basis")
    if B.ndim != 2 or B.shape[0] != M.shape[1]:
        raise CheckFailed(
            f"put the basis vectors in the columns of a {M.shape[1]} x k matrix; yours has shape {tuple(B.shape)}."
        )
    dim = M.shape[1] - int(torch.linalg.matrix_rank(M))
    resid = float((M @ B).abs().max())
    if resid > atol:
        raise CheckFailed(f"A @ basis is not zero (largest entry {resid:.3g}): some column is not in the null space.")
    rank = int(torch.linalg.matrix_rank(B))
    if rank < B.shape[1]:
        raise CheckFailed(f"your {B.shape[1]} columns are linearly dependent (rank {rank}).")
    if B.shape[1] != dim:
        raise CheckFailed(f"the null space has dimension {dim} (n - rank(A)), you gave {B.shape[1]} vectors.")
    return _ok(f"a basis of the {dim}-dimensional null space.", quiet)


def decomposition(
    op, x: Tensor, range_part: Tensor, null_part: Tensor, atol: float = 1e-6, quiet: bool = False
) -> bool:
    """``range_part`` = A^dagger A x and ``null_part`` = (I - A^dagger A) x for the operator ``op``."""
    close(range_part, op.range_part(x), "your range part", atol=atol, quiet=True)
    if float(op.A(_t(null_part, "your null part").to(x.dtype)).abs().max()) > atol * 10:
        raise CheckFailed("A(null_part) is not zero: the null part must be invisible to A.")
    close(null_part, op.null_part(x), "your null part", atol=atol, quiet=True)
    return _ok("range part + null part = x, and A cannot see the null part.", quiet)


def operator(op, shape: tuple[int, ...], reference=None, quiet: bool = False) -> bool:
    """A ``LinearOperator`` of yours: ``A`` matches ``reference(x)`` (when given) on a random batch, and
    ``A_pinv`` is the Moore-Penrose inverse (``op.check_pinv``), naming any Penrose condition that fails."""
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))
    if reference is not None:
        close(op.A(x), reference(x), "your A(x)", quiet=True)
    rep = op.check_pinv(shape, warn=False)
    if not rep.moore_penrose:
        failing = [f"  {k}: largest error {v:.3g}" for k, v in rep.errors.items() if not rep.holds[k]]
        raise CheckFailed("A_pinv is not the Moore-Penrose inverse of A:\n" + "\n".join(failing))
    return _ok("A is right and A_pinv is its Moore-Penrose inverse.", quiet)


def consistent(op, x_hat: Tensor, y: Tensor, tol: float = 1e-5, quiet: bool = False) -> bool:
    """||A x_hat - y|| / ||y|| <= tol: the restoration explains the measurement."""
    from .metrics import consistency

    err = float(consistency(op, _t(x_hat, "x_hat").to(y.dtype), y).max())
    if err > tol:
        raise CheckFailed(
            f"A x_hat differs from y: relative error {err:.3g} > {tol:g}. Did you project every step "
            "(x0_hat = x0_t - A_pinv(A x0_t - y)), and with the same operator that made y?"
        )
    return _ok(f"consistent with y (relative error {err:.1e}).", quiet)


def posterior(
    mean: Any, var: Any, sched, x0: Tensor, x_t: Tensor, t: int, atol: float = 1e-6, quiet: bool = False
) -> bool:
    """The mean and variance of q(x_{t-1} | x_t, x_0) (DDPM eq. 7), checked separately."""
    want_mean = sched.posterior_mean(x0.double(), x_t.double(), t)
    want_var = float(sched.posterior_variance(t))
    problems = []
    try:
        close(mean, want_mean, "your mean", atol=atol, quiet=True)
    except CheckFailed as e:
        problems.append(f"the mean is off: {e}")
    try:
        close(var, want_var, "your variance", atol=atol, rtol=1e-4, quiet=True)
    except CheckFailed as e:
        problems.append(
            f"the variance is off: {e} (it is beta_tilde_t = (1 - alpha_bar_(t-1)) / "
            "(1 - alpha_bar_t) * beta_t, a number, not a tensor of images)"
        )
    if problems:
        raise CheckFailed("\n".join(problems))
    return _ok("mean and variance of q(x_{t-1} | x_t, x_0) are right.", quiet)
