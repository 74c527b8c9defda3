"""Operators that act on k x k blocks: average-pool super-resolution and block compressed sensing.

Both have an SVD block by block: an orthonormal basis of each block's k^2 pixels whose first rows are
the measured directions (the block mean; the chosen Walsh-Hadamard rows), so V^T x is one small matrix
product per block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import DDNMInputError, check_image_shape
from .base import SVDOperator, orthonormal_basis_with_ones

Tensor = torch.Tensor


def _to_blocks(x: Tensor, k: int) -> Tensor:
    """(B, C, H, W) -> (B, C, k*k, P): the pixels of each k x k block, P = (H/k)(W/k) blocks."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // k, k, W // k, k).permute(0, 1, 3, 5, 2, 4).reshape(B, C, k * k, -1)


def _block_Vt(basis: Tensor, x: Tensor, k: int) -> Tensor:
    """Block coordinates (B, C, k*k, H/k, W/k): ``basis`` (orthonormal rows) applied to every k x k block."""
    B, C, H, W = x.shape
    out = torch.einsum("ij,bcjp->bcip", basis.to(x), _to_blocks(x, k))
    return out.reshape(B, C, k * k, H // k, W // k)


def _block_V(basis: Tensor, c: Tensor, k: int) -> Tensor:
    """The inverse of :func:`_block_Vt`: coordinates (B, C, k*k, h, w) -> images (B, C, h*k, w*k)."""
    B, C, _, h, w = c.shape
    blocks = torch.einsum("ji,bcjp->bcip", basis.to(c), c.reshape(B, C, k * k, -1))
    return blocks.reshape(B, C, k, k, h, w).permute(0, 1, 4, 2, 5, 3).reshape(B, C, h * k, w * k)


class BlockSVD(SVDOperator):
    """The SVD of an operator that measures, in every k x k block, the first ``m`` rows of an orthonormal
    basis of the block's k^2 pixels, each with singular value ``s``: set ``self.svd_block = (basis, k, m, s)``."""

    svd_block: tuple[Tensor, int, int, float]

    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        _, k, m, value = self.svd_block
        C, H, W = x_shape
        s = torch.zeros(C, k * k, H // k, W // k)
        s[:, :m] = value
        return s

    def Vt(self, x: Tensor) -> Tensor:
        basis, k, _, _ = self.svd_block
        return _block_Vt(basis, x, k)

    def V(self, c: Tensor) -> Tensor:
        basis, k, _, _ = self.svd_block
        return _block_V(basis, c, k)


class SuperResolution(BlockSVD):
    """Average pooling by ``scale``; A^dagger replicates each low-res pixel into a scale x scale block.

    A A^T = I / scale^2, so the Moore-Penrose inverse A^T (A A^T)^{-1} = scale^2 A^T is block replication.
    """

    def __init__(self, scale: int = 4):
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise DDNMInputError(f"scale must be a positive integer, got {scale!r}; e.g. SuperResolution(scale=4).")
        self.scale = int(scale)
        # SVD per block: the block mean direction (1, ..., 1)/k, s = 1/k; the other k^2 - 1 are null
        self.svd_block = (orthonormal_basis_with_ones(self.scale**2), self.scale, 1, 1.0 / self.scale)

    def _check(self, x: Tensor) -> None:
        check_image_shape(x)
        H, W = x.shape[-2:]
        s = self.scale
        if H % s or W % s:
            raise DDNMInputError(
                f"image size {H}x{W} is not divisible by the scale {s}; crop or pad it to a "
                f"multiple of {s} (e.g. {H - H % s}x{W - W % s})."
            )

    def A(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H/s, W/s)
        self._check(x)
        return F.avg_pool2d(x, self.scale)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, C, h, w) -> (B, C, h*s, w*s)
        check_image_shape(y, "y")
        return y.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y) / self.scale**2

    def __repr__(self) -> str:
        return f"SuperResolution(scale={self.scale})"


def hadamard(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Sylvester's Hadamard matrix H_n (n a power of 2), entries +-1, H H^T = n I."""
    if n < 1 or n & (n - 1):
        raise DDNMInputError(f"Hadamard size must be a power of 2, got {n}.")
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


class CompressedSensing(BlockSVD):
    """Block compressed sensing with randomly signed, permuted Walsh-Hadamard rows.

    Each channel is cut into blocks of ``block x block`` pixels (n = block^2, a power of 4);
    each block v is measured as Phi v with Phi = (H_n D)[rows] / sqrt(n): D a random +-1
    diagonal, ``rows`` a random choice of m = round(ratio * n) rows. Phi has orthonormal
    rows (Phi Phi^T = I), so A^dagger = A^T is the Moore-Penrose inverse.
    y has shape (B, C*m, H/block, W/block): the m measurements of each block stacked as channels.
    """

    def __init__(self, ratio: float = 0.25, seed: int = 0, block: int = 32):
        if not 0 < ratio <= 1:
            raise DDNMInputError(
                f"ratio must be in (0, 1], got {ratio}; e.g. ratio=0.25 keeps 25% of the measurements."
            )
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
        self.svd_block = (self.basis, self.block, self.m, 1.0)  # SVD per block: V^T = basis, s = 1 on m rows
        self._cache: dict = {}

    def _phi(self, like: Tensor) -> Tensor:
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = self.Phi.to(device=like.device, dtype=like.dtype)
        return self._cache[key]

    def A(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C*m, H/b, W/b)
        check_image_shape(x)
        B, C, H, W = x.shape
        b = self.block
        if H % b or W % b:
            raise DDNMInputError(
                f"image size {H}x{W} is not divisible by the CS block size {b}; "
                f"choose CompressedSensing(block=...) dividing both sides."
            )
        v = x.reshape(B, C, H // b, b, W // b, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // b, W // b, b * b)
        yv = v @ self._phi(x).T  # (B, C, nh, nw, m): m measurements per block
        return yv.permute(0, 1, 4, 2, 3).reshape(B, C * self.m, H // b, W // b)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, C*m, nh, nw) -> (B, C, nh*b, nw*b)
        check_image_shape(y, "y")
        B, Cm, nh, nw = y.shape
        if Cm % self.m:
            raise DDNMInputError(
                f"y must have C*{self.m} channels for this CS operator, got {Cm}; make y with op.A(x)."
            )
        C, b = Cm // self.m, self.block
        v = y.reshape(B, C, self.m, nh, nw).permute(0, 1, 3, 4, 2) @ self._phi(y)  # (B, C, nh, nw, n)
        return v.reshape(B, C, nh, nw, b, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, nh * b, nw * b)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y)

    def __repr__(self) -> str:
        return f"CompressedSensing(ratio={self.ratio}, seed={self.seed}, block={self.block})"
