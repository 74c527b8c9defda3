"""The operator interface: A, A^dagger, the projections derived from them, and the SVD view.

Every operator implements two maps on batches ``(B, C, H, W)``:

* ``A(x)``      -- the degradation (DDNM eq. 1 without noise),
* ``A_pinv(y)`` -- a generalised inverse with A A^dagger A = A (DDNM eq. 2).

Everything else derives from those two, once, in :class:`LinearOperator`:
``range_part(x) = A^dagger A x``, ``null_part(x) = (I - A^dagger A) x`` (eq. 3),
the DDNM rectification ``project(x0_t, y)`` (eq. 13), the dense matrix
``as_matrix(shape)`` for small shapes, and ``check_pinv(shape)`` which reports
which of the four Penrose conditions hold. :class:`SVDOperator` adds the closed-form SVD that some
operators carry.

The maps check the shape of what they get, not its values: NaN is refused where images enter
(``measure``, the samplers' y, the model's eps at every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import DDNMInputError, check_image_batch, check_sigma_y, warn_user
from ..linalg import penrose_errors
from ..rng import spawn

Tensor = torch.Tensor


@dataclass
class PinvReport:
    """Which Penrose conditions X = A^dagger satisfies (max abs error of each, dense float64 check,
    :func:`ddnm_edu.linalg.penrose_errors`).

    1. A X A = A      (generalised inverse: what DDNM needs for consistency)
    2. X A X = X      (reflexive)
    3. (A X)^T = A X
    4. (X A)^T = X A
    All four together characterise the Moore-Penrose inverse.
    """

    errors: dict[str, float]
    atol: float
    holds: dict[str, bool] = field(init=False)

    def __post_init__(self) -> None:
        self.holds = {k: v <= self.atol for k, v in self.errors.items()}

    @property
    def consistent(self) -> bool:
        """Condition 1: A (A^+ y) = y for every y in the range of A, so DDNM's x0_hat is consistent."""
        return self.holds["A X A = A"]

    @property
    def moore_penrose(self) -> bool:
        return all(self.holds.values())

    def __str__(self) -> str:
        rows = [
            f"  {'holds' if self.holds[k] else 'FAILS'}  {k:<16} max error {v:.2e}" for k, v in self.errors.items()
        ]
        return "Penrose conditions:\n" + "\n".join(rows)


class LinearOperator:
    """Base class: subclasses implement ``A`` and ``A_pinv``; projections derive from them here."""

    # --- the two maps a subclass provides ---------------------------------------------------
    def A(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> y
        raise NotImplementedError

    def A_pinv(self, y: Tensor) -> Tensor:  # y -> (B, C, H, W)
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:
        """A^T y, by default through autograd (a vector-Jacobian product of the linear map A)."""
        x = torch.zeros(self.x_shape(y), dtype=y.dtype, device=y.device, requires_grad=True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.A(x), x, grad_outputs=y)
        return g

    def x_shape(self, y: Tensor) -> tuple[int, ...]:
        """The shape of A_pinv(y) (what x must look like)."""
        return tuple(self.A_pinv(y).shape)

    def __call__(self, x: Tensor) -> Tensor:
        return self.A(x)

    def measure(
        self, x: Tensor, sigma_y: float = 0.0, *, generator: torch.Generator | None = None, seed: int | None = None
    ) -> Tensor:
        """y = A x + sigma_y n, n ~ N(0, I): the measurement (DDNM eq. 16; sigma_y on the images' [-1, 1] scale).

        n is drawn on the CPU in y's dtype from ``generator``, or (not both) from the stream
        ``rng.spawn(seed, "measure")``, seed 0 by default: the same seed gives the same y on every
        device, and the measurement noise never equals the noise a sampler draws from the same seed.
        """
        sigma_y = check_sigma_y(sigma_y)
        if generator is not None and seed is not None:
            raise DDNMInputError("give seed= or generator=, not both: the generator decides the noise.")
        check_image_batch(x)  # the maps check shapes only: NaN stops here, where the image enters
        y = self.A(x)
        if sigma_y == 0:
            return y
        g = spawn(seed or 0, "measure") if generator is None else generator
        return y + sigma_y * torch.randn(y.shape, generator=g, dtype=y.dtype).to(y.device)

    # --- derived once for every operator ----------------------------------------------------
    def range_part(self, x: Tensor) -> Tensor:
        """A^dagger A x: the part of x that the measurement sees (DDNM eq. 3)."""
        return self.A_pinv(self.A(x))

    def null_part(self, x: Tensor) -> Tensor:
        """(I - A^dagger A) x: the part of x that A cannot see, A(null_part(x)) = 0 (DDNM eq. 3)."""
        return x - self.range_part(x)

    def project(self, x0_t: Tensor, y: Tensor, lam: float | Tensor = 1.0) -> Tensor:
        """x0_hat = x0_t - lam * A^dagger (A x0_t - y).

        With lam = 1 this is DDNM eq. 13 / Algorithm 1 line 4,
        x0_hat = A^dagger y + (I - A^dagger A) x0_t; with lam = lambda_t it is DDNM+ eq. 17.
        """
        return x0_t - lam * self.A_pinv(self.A(x0_t) - y)

    # --- dense views for teaching and tests ----------------------------------------------------
    def as_matrix(self, shape: tuple[int, int, int], dtype: torch.dtype = torch.float64) -> Tensor:
        """The (m, n) matrix of A on images of ``shape = (C, H, W)`` (n = C*H*W; keep it small)."""
        n = math.prod(shape)
        basis = torch.eye(n, dtype=dtype).reshape(n, *shape)
        return self.A(basis).reshape(n, -1).T.contiguous()

    def pinv_matrix(self, shape: tuple[int, int, int], dtype: torch.dtype = torch.float64) -> Tensor:
        """The (n, m) matrix of A_pinv for images of ``shape``."""
        y = self.A(torch.zeros(1, *shape, dtype=dtype))
        m = y[0].numel()
        basis = torch.eye(m, dtype=dtype).reshape(m, *y.shape[1:])
        return self.A_pinv(basis).reshape(m, -1).T.contiguous()

    def check_pinv(self, shape: tuple[int, int, int], atol: float = 1e-8, warn: bool = True) -> PinvReport:
        """Check the four Penrose conditions with dense float64 matrices on images of ``shape``.

        Warns when A A^dagger A != A, because then DDNM's x0_hat is *not* consistent with y.
        """
        errors = penrose_errors(self.as_matrix(shape), self.pinv_matrix(shape))
        report = PinvReport(errors, atol)
        if warn and not report.consistent:
            warn_user(
                f"{self!r}: A A^dagger A != A (max error {errors['A X A = A']:.2e}); DDNM's "
                "x0_hat will not be consistent with y. Use a true generalised inverse "
                "(e.g. the Moore-Penrose inverse of the whole composite)."
            )
        return report

    def consistency_probe(self, x_like: Tensor, n: int = 2, seed: int = 0) -> float:
        """Relative error of A A^dagger A x = A x on ``n`` random images shaped like ``x_like``.

        A cheap, matrix-free version of Penrose condition 1 that the samplers run once.
        """
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((n, *x_like.shape[1:]), generator=g).to(x_like)
        Ax = self.A(x)
        return float((self.A(self.A_pinv(Ax)) - Ax).norm() / Ax.norm().clamp_min(1e-30))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SVDOperator(LinearOperator):
    """An operator that also carries its SVD A = U diag(s) V^T in closed form (deepinv's
    ``DecomposablePhysics``): the DDRM-style sampler and DDNM+'s per-direction noise rule need one.

    Coordinates c = V^T x keep a batch dimension and an operator-specific layout (pixels, blocks,
    frequencies); s has that layout without the batch. Samplers work only through these three methods,
    whatever the operator.
    """

    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        """s_i for each coordinate of V^T x on images of ``x_shape = (C, H, W)``; 0 = a null direction."""
        raise NotImplementedError

    def Vt(self, x: Tensor) -> Tensor:
        """The coordinates V^T x of a batch of images (V^H x, complex, in a Fourier basis)."""
        raise NotImplementedError

    def V(self, c: Tensor) -> Tensor:
        """The images V c of a batch of coordinates (the inverse of :meth:`Vt`)."""
        raise NotImplementedError

    def y_coords(self, y: Tensor) -> Tensor:
        """U^T y, placed at the coordinates it measures (0 elsewhere): s_i c_i = (U^T y)_i for y = A x."""
        x = self.A_pinv(y)
        return self.singular_values(tuple(x.shape[1:])).to(y) * self.Vt(x)


def require_svd(op: LinearOperator, who: str) -> SVDOperator:
    """``op`` itself, if it carries its SVD; otherwise one clear line naming the operators that do."""
    if not isinstance(op, SVDOperator):
        raise DDNMInputError(
            f"{op!r} has no closed-form SVD here; {who} needs one (Denoising, Inpainting, "
            "Colorization, SuperResolution, CompressedSensing and Deblur have it)."
        )
    return op


def rectify(op: LinearOperator, y: Tensor, estimate: Tensor) -> Tensor:
    """Null-space rectification of *any* estimate f(y): x_hat = A^dagger y + (I - A^dagger A) f(y).

    Keep what the estimate says about the null space of A, replace its range part by the one y
    determines; then A x_hat = A A^dagger y = y for noiseless y in range(A). This is DDNM's line 4 applied
    once to a network's output instead of at every step, and the "null space network" of Schwab,
    Antholzer & Haltmeier (Inverse Problems 35, 2019). ``op.project(estimate, y)`` computes it.
    """
    return op.project(estimate, y)


def orthonormal_basis_with_ones(n: int, dtype=torch.float64) -> Tensor:
    """An orthonormal (n, n) basis whose first row is the normalised all-ones vector (a mean and its complement)."""
    M = torch.eye(n, dtype=dtype)
    M[:, 0] = 1.0
    Q, _ = torch.linalg.qr(M)
    Q = Q.T.contiguous()
    return Q * torch.sign(Q[0, 0])
