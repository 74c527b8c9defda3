"""Linear degradation operators y = A x and their pseudo-inverses A^dagger.

Every operator implements two maps on batches ``(B, C, H, W)``:

* ``A(x)``      -- the degradation (DDNM eq. 1 without noise),
* ``A_pinv(y)`` -- a generalised inverse with A A^dagger A = A (DDNM eq. 2).

Everything else derives from those two, once, in :class:`LinearOperator`:
``range_part(x) = A^dagger A x``, ``null_part(x) = (I - A^dagger A) x`` (eq. 3),
the DDNM rectification ``project(x0_t, y)`` (eq. 13), the dense matrix
``as_matrix(shape)`` for small shapes, and ``check_pinv(shape)`` which reports
which of the four Penrose conditions hold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .errors import DDNMInputError, check_finite, check_image_batch, warn_user

Tensor = torch.Tensor


@dataclass
class PinvReport:
    """Which Penrose conditions A^dagger satisfies (max abs error of each, dense float64 check).

    1. A A^+ A = A      (generalised inverse: what DDNM needs for consistency)
    2. A^+ A A^+ = A^+  (reflexive)
    3. (A A^+)^T = A A^+
    4. (A^+ A)^T = A^+ A
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
        return self.holds["A A+ A = A"]

    @property
    def moore_penrose(self) -> bool:
        return all(self.holds.values())

    def __str__(self) -> str:
        rows = [f"  {'holds' if self.holds[k] else 'FAILS'}  {k:<22} max error {v:.2e}" for k, v in self.errors.items()]
        return "Penrose conditions:\n" + "\n".join(rows)


class LinearOperator:
    """Base class: subclasses implement ``A`` and ``A_pinv``; projections derive from them here."""

    name = "operator"
    #: True when A_pinv is the Moore-Penrose inverse (not just a generalised inverse).
    moore_penrose = True

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
        M, P = self.as_matrix(shape), self.pinv_matrix(shape)
        MP, PM = M @ P, P @ M
        errors = {
            "A A+ A = A": float((MP @ M - M).abs().max()),
            "A+ A A+ = A+": float((PM @ P - P).abs().max()),
            "(A A+)^T = A A+": float((MP.T - MP).abs().max()),
            "(A+ A)^T = A+ A": float((PM.T - PM).abs().max()),
        }
        report = PinvReport(errors, atol)
        if warn and not report.consistent:
            warn_user(f"{self!r}: A A^dagger A != A (max error {errors['A A+ A = A']:.2e}); DDNM's "
                      "x0_hat will not be consistent with y. Use a true generalised inverse "
                      "(e.g. the Moore-Penrose inverse of the whole composite).")
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


def rectify(op: LinearOperator, y: Tensor, estimate: Tensor) -> Tensor:
    """Null-space rectification of *any* estimate f(y): x_hat = A^dagger y + (I - A^dagger A) f(y).

    Keep what the estimate says about the null space of A, replace its range part by the one y
    determines; then A x_hat = A A^dagger y = y for noiseless y in range(A). This is DDNM's line 4 applied
    once to a network's output instead of at every step, and the "null space network" of Schwab,
    Antholzer & Haltmeier (Inverse Problems 35, 2019). ``op.project(estimate, y)`` computes it.
    """
    return op.project(estimate, y)


class Denoising(LinearOperator):
    """A = I: y = x + n. A^dagger = I and the null space is {0}."""

    name = "denoise"

    def A(self, x: Tensor) -> Tensor:
        check_image_batch(x)
        return x

    def A_pinv(self, y: Tensor) -> Tensor:
        check_finite(y, "y")
        return y

    def A_adjoint(self, y: Tensor) -> Tensor:
        return y


class SuperResolution(LinearOperator):
    """Average pooling by ``scale``; A^dagger replicates each low-res pixel into a scale x scale block.

    A A^T = I / scale^2, so the Moore-Penrose inverse A^T (A A^T)^{-1} = scale^2 A^T is block replication.
    """

    name = "sr"

    def __init__(self, scale: int = 4):
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise DDNMInputError(f"scale must be a positive integer, got {scale!r}; e.g. SuperResolution(scale=4).")
        self.scale = int(scale)

    def _check(self, x: Tensor) -> None:
        check_image_batch(x)
        H, W = x.shape[-2:]
        s = self.scale
        if H % s or W % s:
            raise DDNMInputError(f"image size {H}x{W} is not divisible by the scale {s}; crop or pad it to a "
                                 f"multiple of {s} (e.g. {H - H % s}x{W - W % s}).")

    def A(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H/s, W/s)
        self._check(x)
        return F.avg_pool2d(x, self.scale)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, C, h, w) -> (B, C, h*s, w*s)
        check_image_batch(y, "y")
        return y.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y) / self.scale ** 2

    def __repr__(self) -> str:
        return f"SuperResolution(scale={self.scale})"


class Inpainting(LinearOperator):
    """A = diag(mask) with mask 1 = observed, 0 = missing; y keeps the full size with zeros where missing.

    A is a diagonal 0/1 projector, so it is its own Moore-Penrose inverse: A^dagger = A.
    """

    name = "inpaint"

    def __init__(self, mask: Tensor):
        mask = torch.as_tensor(mask)
        if mask.ndim == 2:
            mask = mask[None]
        if mask.ndim == 4 and mask.shape[0] == 1:
            mask = mask[0]
        if mask.ndim != 3:
            raise DDNMInputError(f"mask must have shape (H, W), (C, H, W) or (1, C, H, W), got {tuple(mask.shape)}.")
        check_finite(mask.float(), "mask")
        if not ((mask == 0) | (mask == 1)).all():
            raise DDNMInputError("mask must contain only 0 (missing) and 1 (observed); threshold it, "
                                 "e.g. (mask > 0.5).float().")
        self.mask = mask.float()  # (C or 1, H, W)

    def _m(self, x: Tensor) -> Tensor:
        m = self.mask
        if m.shape[-2:] != x.shape[-2:] or m.shape[0] not in (1, x.shape[1]):
            raise DDNMInputError(f"mask shape {tuple(m.shape)} does not match the image {tuple(x.shape[1:])}; "
                                 f"make a mask of shape (H, W) = {tuple(x.shape[-2:])} or (C, H, W).")
        return m.to(device=x.device, dtype=x.dtype)

    def A(self, x: Tensor) -> Tensor:
        check_image_batch(x)
        return x * self._m(x)

    def A_pinv(self, y: Tensor) -> Tensor:
        check_image_batch(y, "y")
        return y * self._m(y)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y)

    def __repr__(self) -> str:
        return f"Inpainting(mask {tuple(self.mask.shape)}, {float(self.mask.mean()):.0%} observed)"

    # ready-made masks
    @staticmethod
    def random_mask(size: int | tuple[int, int], p_missing: float = 0.5, seed: int = 0) -> Tensor:
        """(H, W) mask with each pixel missing independently with probability p_missing."""
        H, W = (size, size) if isinstance(size, int) else size
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(H, W, generator=g) >= p_missing).float()

    @staticmethod
    def box_mask(size: int | tuple[int, int], box: int | tuple[int, int]) -> Tensor:
        """(H, W) mask with a centred box of size ``box`` missing."""
        H, W = (size, size) if isinstance(size, int) else size
        bh, bw = (box, box) if isinstance(box, int) else box
        m = torch.ones(H, W)
        top, left = (H - bh) // 2, (W - bw) // 2
        m[top:top + bh, left:left + bw] = 0
        return m


class Colorization(LinearOperator):
    """Gray = mean of R, G, B: A = [1/3 1/3 1/3] per pixel, A^dagger = [1 1 1]^T (replicate the gray value)."""

    name = "colorize"

    def A(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 1, H, W)
        check_image_batch(x, channels=3)
        return x.mean(1, keepdim=True)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, 1, H, W) -> (B, 3, H, W)
        check_image_batch(y, "y", channels=1)
        return y.repeat(1, 3, 1, 1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y) / 3


def hadamard(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Sylvester's Hadamard matrix H_n (n a power of 2), entries +-1, H H^T = n I."""
    if n < 1 or n & (n - 1):
        raise DDNMInputError(f"Hadamard size must be a power of 2, got {n}.")
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


class CompressedSensing(LinearOperator):
    """Block compressed sensing with randomly signed, permuted Walsh-Hadamard rows.

    Each channel is cut into blocks of ``block x block`` pixels (n = block^2, a power of 4);
    each block v is measured as Phi v with Phi = (H_n D)[rows] / sqrt(n): D a random +-1
    diagonal, ``rows`` a random choice of m = round(ratio * n) rows. Phi has orthonormal
    rows (Phi Phi^T = I), so A^dagger = A^T is the Moore-Penrose inverse.
    y has shape (B, C*m, H/block, W/block): the m measurements of each block stacked as channels.
    """

    name = "cs"

    def __init__(self, ratio: float = 0.25, seed: int = 0, block: int = 32):
        if not 0 < ratio <= 1:
            raise DDNMInputError(f"ratio must be in (0, 1], got {ratio}; e.g. ratio=0.25 keeps 25% of the measurements.")
        if block < 1 or block & (block - 1):
            raise DDNMInputError(f"block must be a power of 2, got {block}.")
        self.ratio, self.seed, self.block = float(ratio), int(seed), int(block)
        n = block * block
        self.m = max(1, int(round(ratio * n)))
        g = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, (n,), generator=g).double() * 2 - 1
        rows = torch.randperm(n, generator=g)
        # all n rows form an orthonormal basis (used by the DDRM-style sampler); A measures the first m
        self.basis = (hadamard(n)[rows] * signs[None]) / math.sqrt(n)  # (n, n) float64
        self.Phi = self.basis[: self.m]  # (m, n), orthonormal rows
        self._cache: dict = {}

    def _phi(self, like: Tensor) -> Tensor:
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = self.Phi.to(device=like.device, dtype=like.dtype)
        return self._cache[key]

    def A(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C*m, H/b, W/b)
        check_image_batch(x)
        B, C, H, W = x.shape
        b = self.block
        if H % b or W % b:
            raise DDNMInputError(f"image size {H}x{W} is not divisible by the CS block size {b}; "
                                 f"choose CompressedSensing(block=...) dividing both sides.")
        v = x.reshape(B, C, H // b, b, W // b, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // b, W // b, b * b)
        yv = v @ self._phi(x).T  # (B, C, nh, nw, m): m measurements per block
        return yv.permute(0, 1, 4, 2, 3).reshape(B, C * self.m, H // b, W // b)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, C*m, nh, nw) -> (B, C, nh*b, nw*b)
        check_image_batch(y, "y")
        B, Cm, nh, nw = y.shape
        if Cm % self.m:
            raise DDNMInputError(f"y must have C*{self.m} channels for this CS operator, got {Cm}; "
                                 f"make y with op.A(x).")
        C, b = Cm // self.m, self.block
        v = y.reshape(B, C, self.m, nh, nw).permute(0, 1, 3, 4, 2) @ self._phi(y)  # (B, C, nh, nw, n)
        return v.reshape(B, C, nh, nw, b, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, nh * b, nw * b)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y)

    def __repr__(self) -> str:
        return f"CompressedSensing(ratio={self.ratio}, seed={self.seed}, block={self.block})"


def gaussian_kernel(sigma: float = 1.0, size: int | None = None) -> Tensor:
    """Normalised 2-D Gaussian blur kernel (size defaults to 2*ceil(3 sigma)+1)."""
    size = size or 2 * math.ceil(3 * sigma) + 1
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k1 = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = k1[:, None] * k1[None, :]
    return k / k.sum()


class Deblur(LinearOperator):
    """Circular convolution with ``kernel`` (via the FFT): A x = F^-1 (K . F x).

    A is diagonal in Fourier space with entries K(w), so its pseudo-inverse is diagonal too:
    A^dagger y = F^-1 (conj(K)/|K|^2 . F y) where |K| > rcond * max|K|, and 0 elsewhere.
    With ``rcond`` below every |K| this is the exact Moore-Penrose inverse; otherwise it is the
    Moore-Penrose inverse of the *truncated* operator (like numpy.linalg.pinv's rcond), and
    A A^dagger A = A holds only on the kept frequencies -- ``check_pinv`` shows by how much it fails.
    """

    name = "deblur"

    def __init__(self, kernel: Tensor, rcond: float = 1e-3):
        k = torch.as_tensor(kernel, dtype=torch.float64)
        if k.ndim != 2:
            raise DDNMInputError(f"kernel must be 2-D (kh, kw), got shape {tuple(k.shape)}.")
        check_finite(k, "kernel")
        if rcond < 0:
            raise DDNMInputError(f"rcond must be >= 0, got {rcond}.")
        self.kernel, self.rcond = k, float(rcond)
        self._cache: dict = {}
        self.moore_penrose = True  # of the truncated operator; see class docstring

    def transfer(self, H: int, W: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """(K, K_pinv): rfft2 of the kernel centred at pixel (0, 0), and its thresholded inverse."""
        key = (H, W, like.device, like.dtype)
        if key not in self._cache:
            kh, kw = self.kernel.shape
            if kh > H or kw > W:
                raise DDNMInputError(f"kernel {kh}x{kw} is larger than the image {H}x{W}; use a smaller kernel.")
            pad = torch.zeros(H, W, dtype=torch.float64)
            pad[:kh, :kw] = self.kernel
            pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), (0, 1))
            K = torch.fft.rfft2(pad)
            keep = K.abs() > self.rcond * K.abs().max()
            K_pinv = torch.where(keep, K.conj() / K.abs().clamp_min(1e-300) ** 2, torch.zeros_like(K))
            cdtype = torch.complex64 if like.dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.complex128
            self._cache[key] = (K.to(device=like.device, dtype=cdtype), K_pinv.to(device=like.device, dtype=cdtype))
        return self._cache[key]

    def _apply(self, x: Tensor, which: int) -> Tensor:
        H, W = x.shape[-2:]
        K = self.transfer(H, W, x)[which]
        return torch.fft.irfft2(torch.fft.rfft2(x) * K, s=(H, W)).to(x.dtype)

    def A(self, x: Tensor) -> Tensor:
        check_image_batch(x)
        return self._apply(x, 0)

    def A_pinv(self, y: Tensor) -> Tensor:
        check_image_batch(y, "y")
        return self._apply(y, 1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        H, W = y.shape[-2:]
        K = self.transfer(H, W, y)[0]
        return torch.fft.irfft2(torch.fft.rfft2(y) * K.conj(), s=(H, W)).to(y.dtype)

    def __repr__(self) -> str:
        return f"Deblur(kernel {tuple(self.kernel.shape)}, rcond={self.rcond})"


class Composite(LinearOperator):
    """A = A_n ... A_2 A_1 (``ops[0]`` is applied first), with the reverse-order rule
    A^dagger = A_1^dagger A_2^dagger ... A_n^dagger used by the DDNM paper and code.

    That rule is *not* the Moore-Penrose inverse in general, and it can even break
    A A^dagger A = A (e.g. a pixel mask followed by pooling): call :meth:`check_pinv`
    on a small shape, or rely on the samplers' consistency probe, which warns.
    """

    name = "composite"
    moore_penrose = False

    def __init__(self, ops: list[LinearOperator]):
        if len(ops) < 1 or not all(isinstance(o, LinearOperator) for o in ops):
            raise DDNMInputError("Composite needs a non-empty list of operators, e.g. "
                                 "Composite([Colorization(), SuperResolution(2)]).")
        self.ops = list(ops)

    def A(self, x: Tensor) -> Tensor:
        for op in self.ops:
            x = op.A(x)
        return x

    def A_pinv(self, y: Tensor) -> Tensor:
        for op in reversed(self.ops):
            y = op.A_pinv(y)
        return y

    def A_adjoint(self, y: Tensor) -> Tensor:
        for op in reversed(self.ops):
            y = op.A_adjoint(y)
        return y

    def __repr__(self) -> str:
        return f"Composite([{', '.join(map(repr, self.ops))}])"
