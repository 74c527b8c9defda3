"""The singular basis of the simple operators: A = U S V^T with V^T, V and s in closed form.

For Denoising, Inpainting, Colorization, SuperResolution (average pooling) and CompressedSensing the
right singular vectors are known in closed form (pixels; (1,1,1)/sqrt 3 and its complement per
pixel; the block mean and its complement per k x k block; the CS basis rows), so V^T x costs about
as much as A x. The DDRM-style sampler (``ddrm.py``) and DDNM+'s per-direction noise rule
(``noise_rules.py``, ``noise_rule="svd"``) both work in these coordinates. Deblur (a complex Fourier
basis) and Composite are not covered.
"""
from __future__ import annotations

import math

import torch

from . import operators as ops
from .errors import DDNMInputError

Tensor = torch.Tensor


def _block_basis(n: int, dtype=torch.float64) -> Tensor:
    """An orthonormal (n, n) basis whose first row is the normalised all-ones vector."""
    M = torch.eye(n, dtype=dtype)
    M[:, 0] = 1.0
    Q, _ = torch.linalg.qr(M)
    Q = Q.T.contiguous()
    return Q * torch.sign(Q[0, 0])


class SpectralView:
    """V^T, V, the singular values s (one per coordinate, 0 = unseen) and y in the same coordinates."""

    def __init__(self, op: ops.LinearOperator, like: Tensor):
        self.op = op
        C, H, W = like.shape[1:]
        self.shape = (C, H, W)
        if isinstance(op, ops.Denoising):
            self.kind, self.s = "pixel", torch.ones(C * H * W)
        elif isinstance(op, ops.Inpainting):
            self.kind, self.s = "pixel", op.mask.expand(C, H, W).reshape(-1).clone()
        elif isinstance(op, ops.Colorization):
            self.kind, self.B = "color", _block_basis(3)  # rows: (1,1,1)/sqrt3, then two more
            s = torch.zeros(3, H * W)
            s[0] = 1 / math.sqrt(3)
            self.s = s.reshape(-1)
        elif isinstance(op, ops.SuperResolution):
            k = op.scale
            self.kind, self.B, self.k = "block", _block_basis(k * k), k
            s = torch.zeros(C, k * k, H // k, W // k)
            s[:, 0] = 1.0 / k
            self.s = s.reshape(-1)
        elif isinstance(op, ops.CompressedSensing):
            n = op.block * op.block
            self.kind = "cs"
            self.B, self.k = op.basis, op.block  # (n, n) orthonormal rows, the first m = op.Phi
            s = torch.zeros(C, n, H // op.block, W // op.block)
            s[:, : op.m] = 1.0
            self.s = s.reshape(-1)
        else:
            raise DDNMInputError(f"the SVD view (DDRM-style sampler, noise_rule='svd') covers Denoising, Inpainting, "
                                 f"Colorization, SuperResolution and CompressedSensing, not {op!r}.")

    # coordinates are flattened (B, D)
    def Vt(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        if self.kind == "pixel":
            return x.reshape(B, -1)
        if self.kind == "color":  # (B, 3, H, W) -> (B, 3, H*W) coefficients per pixel
            return torch.einsum("ij,bjp->bip", self.B.to(x), x.reshape(B, 3, -1)).reshape(B, -1)
        C, H, W = self.shape
        k = self.k
        blocks = x.reshape(B, C, H // k, k, W // k, k).permute(0, 1, 3, 5, 2, 4).reshape(B, C, k * k, -1)
        return torch.einsum("ij,bcjp->bcip", self.B.to(x), blocks).reshape(B, -1)

    def V(self, c: Tensor) -> Tensor:
        B = c.shape[0]
        C, H, W = self.shape
        if self.kind == "pixel":
            return c.reshape(B, C, H, W)
        if self.kind == "color":
            return torch.einsum("ji,bjp->bip", self.B.to(c), c.reshape(B, 3, -1)).reshape(B, 3, H, W)
        k = self.k
        blocks = torch.einsum("ji,bcjp->bcip", self.B.to(c), c.reshape(B, C, k * k, -1))
        return blocks.reshape(B, C, k, k, H // k, W // k).permute(0, 1, 4, 2, 5, 3).reshape(B, C, H, W)

    def y_coords(self, y: Tensor) -> Tensor:
        """U^T y placed at the coordinates it measures (zeros elsewhere): s_i c_i = y_i for y = A x."""
        return self.s.to(y) * self.Vt(self.op.A_pinv(y))
