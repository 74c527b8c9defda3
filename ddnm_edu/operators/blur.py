"""Deblurring: circular convolution with a kernel, diagonal in the Fourier basis."""

from __future__ import annotations

import math

import torch

from ..errors import DDNMInputError, check_finite, check_image_shape
from .base import SVDOperator

Tensor = torch.Tensor


def gaussian_kernel(sigma: float = 1.0, size: int | None = None) -> Tensor:
    """Normalised 2-D Gaussian blur kernel (size defaults to 2*ceil(3 sigma)+1)."""
    size = size or 2 * math.ceil(3 * sigma) + 1
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k1 = torch.exp(-(r**2) / (2 * sigma**2))
    k = k1[:, None] * k1[None, :]
    return k / k.sum()


class Deblur(SVDOperator):
    """Circular convolution with ``kernel`` (via the FFT): A x = F^-1 (K . F x).

    A is diagonal in Fourier space with entries K(w), so its pseudo-inverse is diagonal too:
    A^dagger y = F^-1 (conj(K)/|K|^2 . F y) where |K| > rcond * max|K|, and 0 elsewhere.
    With ``rcond`` below every |K| this is the exact Moore-Penrose inverse; otherwise it is the
    Moore-Penrose inverse of the *truncated* operator (like numpy.linalg.pinv's rcond), and
    A A^dagger A = A holds only on the kept frequencies -- ``check_pinv`` shows by how much it fails.
    """

    def __init__(self, kernel: Tensor, rcond: float = 1e-3):
        k = torch.as_tensor(kernel, dtype=torch.float64)
        if k.ndim != 2:
            raise DDNMInputError(f"kernel must be 2-D (kh, kw), got shape {tuple(k.shape)}.")
        check_finite(k, "kernel")
        if rcond < 0:
            raise DDNMInputError(f"rcond must be >= 0, got {rcond}.")
        self.kernel, self.rcond = k, float(rcond)
        self._cache: dict = {}

    def _centred_kernel(self, H: int, W: int) -> Tensor:
        """The kernel zero-padded to H x W with its centre at pixel (0, 0) (float64)."""
        kh, kw = self.kernel.shape
        if kh > H or kw > W:
            raise DDNMInputError(f"kernel {kh}x{kw} is larger than the image {H}x{W}; use a smaller kernel.")
        pad = torch.zeros(H, W, dtype=torch.float64)
        pad[:kh, :kw] = self.kernel
        return torch.roll(pad, (-(kh // 2), -(kw // 2)), (0, 1))

    def transfer(self, H: int, W: int, like: Tensor) -> tuple[Tensor, Tensor]:
        """(K, K_pinv): rfft2 of the kernel centred at pixel (0, 0), and its thresholded inverse."""
        key = (H, W, like.device, like.dtype)
        if key not in self._cache:
            K = torch.fft.rfft2(self._centred_kernel(H, W))
            keep = K.abs() > self.rcond * K.abs().max()
            K_pinv = torch.where(keep, K.conj() / K.abs().clamp_min(1e-300) ** 2, torch.zeros_like(K))
            cdtype = (
                torch.complex64 if like.dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.complex128
            )
            self._cache[key] = (K.to(device=like.device, dtype=cdtype), K_pinv.to(device=like.device, dtype=cdtype))
        return self._cache[key]

    def _apply(self, x: Tensor, which: int) -> Tensor:
        H, W = x.shape[-2:]
        K = self.transfer(H, W, x)[which]
        return torch.fft.irfft2(torch.fft.rfft2(x) * K, s=(H, W)).to(x.dtype)

    def A(self, x: Tensor) -> Tensor:
        check_image_shape(x)
        return self._apply(x, 0)

    def A_pinv(self, y: Tensor) -> Tensor:
        check_image_shape(y, "y")
        return self._apply(y, 1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        H, W = y.shape[-2:]
        K = self.transfer(H, W, y)[0]
        return torch.fft.irfft2(torch.fft.rfft2(y) * K.conj(), s=(H, W)).to(y.dtype)

    # SVD in the Fourier basis: A = F^H diag(K) F = U diag(|K|) V^H with V^H = F (the unitary DFT),
    # s = |K(w)| and U = F^H diag(K / |K|). Frequencies that A_pinv drops (|K| <= rcond max|K|) count as null
    # directions: s = 0 there, the SVD of the truncated operator that A_pinv inverts.
    def singular_values(self, x_shape: tuple[int, int, int]) -> Tensor:
        C, H, W = x_shape
        s = torch.fft.fft2(self._centred_kernel(H, W)).abs()
        return torch.where(s > self.rcond * s.max(), s, torch.zeros_like(s)).expand(C, H, W).clone()

    def Vt(self, x: Tensor) -> Tensor:  # complex coefficients F x / sqrt(HW), (B, C, H, W)
        return torch.fft.fft2(x, norm="ortho")

    def V(self, c: Tensor) -> Tensor:  # real for the conjugate-symmetric coefficients of a real image
        return torch.fft.ifft2(c, norm="ortho").real

    def __repr__(self) -> str:
        return f"Deblur(kernel {tuple(self.kernel.shape)}, rcond={self.rcond})"
