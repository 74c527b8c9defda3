"""Operators that act pixel by pixel: denoising (A = I), inpainting (a 0/1 mask) and colorization
(the mean of R, G, B).

Their SVD is per pixel, so V^T x costs no more than A x.
"""

from __future__ import annotations

import math

import torch

from ..errors import DDNMInputError, check_finite, check_image_shape
from .base import SVDOperator, orthonormal_basis_with_ones

Tensor = torch.Tensor


class Denoising(SVDOperator):
    """A = I: y = x + n. A^dagger = I and the null space is {0}."""

    def A(self, x: Tensor) -> Tensor:
        check_image_shape(x)
        return x

    def A_pinv(self, y: Tensor) -> Tensor:
        check_image_shape(y, "y")
        return y

    def A_adjoint(self, y: Tensor) -> Tensor:
        return y

    # SVD: V = I, s = 1 for every pixel
    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        return torch.ones(x_shape)

    def Vt(self, x: Tensor) -> Tensor:
        return x

    def V(self, c: Tensor) -> Tensor:
        return c


class Inpainting(SVDOperator):
    """A = diag(mask) with mask 1 = observed, 0 = missing; y keeps the full size with zeros where missing.

    A is a diagonal 0/1 projector, so it is its own Moore-Penrose inverse: A^dagger = A.
    """

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
            raise DDNMInputError(
                "mask must contain only 0 (missing) and 1 (observed); threshold it, e.g. (mask > 0.5).float()."
            )
        self.mask = mask.float()  # (C or 1, H, W)

    def _m(self, x: Tensor) -> Tensor:
        m = self.mask
        if m.shape[-2:] != x.shape[-2:] or m.shape[0] not in (1, x.shape[1]):
            raise DDNMInputError(
                f"mask shape {tuple(m.shape)} does not match the image {tuple(x.shape[1:])}; "
                f"make a mask of shape (H, W) = {tuple(x.shape[-2:])} or (C, H, W)."
            )
        return m.to(device=x.device, dtype=x.dtype)

    def A(self, x: Tensor) -> Tensor:
        check_image_shape(x)
        return x * self._m(x)

    def A_pinv(self, y: Tensor) -> Tensor:
        check_image_shape(y, "y")
        return y * self._m(y)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y)

    # SVD: V = I (pixels), s = 1 where observed and 0 where missing
    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        return self.mask.expand(*x_shape).clone()

    def Vt(self, x: Tensor) -> Tensor:
        return x

    def V(self, c: Tensor) -> Tensor:
        return c

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
        m[top : top + bh, left : left + bw] = 0
        return m


class Colorization(SVDOperator):
    """Gray = mean of R, G, B: A = [1/3 1/3 1/3] per pixel, A^dagger = [1 1 1]^T (replicate the gray value)."""

    _basis = orthonormal_basis_with_ones(3)  # rows: (1, 1, 1)/sqrt 3, then two more

    def A(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 1, H, W)
        check_image_shape(x, channels=3)
        return x.mean(1, keepdim=True)

    def A_pinv(self, y: Tensor) -> Tensor:  # (B, 1, H, W) -> (B, 3, H, W)
        check_image_shape(y, "y", channels=1)
        return y.repeat(1, 3, 1, 1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self.A_pinv(y) / 3

    # SVD, per pixel: V's first row is (1, 1, 1)/sqrt 3 with s = 1/sqrt 3 (what the mean sees), and two
    # orthonormal rows that sum to zero, with s = 0 (the colour the gray value cannot see)
    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        s = torch.zeros(x_shape)
        s[0] = 1 / math.sqrt(3)
        return s

    def Vt(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 3, H, W): coefficients per pixel
        B, _, H, W = x.shape
        return torch.einsum("ij,bjp->bip", self._basis.to(x), x.reshape(B, 3, -1)).reshape(B, 3, H, W)

    def V(self, c: Tensor) -> Tensor:
        B, _, H, W = c.shape
        return torch.einsum("ji,bjp->bip", self._basis.to(c), c.reshape(B, 3, -1)).reshape(B, 3, H, W)
