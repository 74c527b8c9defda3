"""A DDRM-style sampler (Kawar et al. 2022), for the comparison with DDNM.

DDRM works in the singular basis of A = U S V^T. In the coordinates c = V^T x each direction is either
unseen (s_i = 0) or measured with an effective noise level sigma_y / s_i, and each is sampled
differently (DDRM eq. 7-8, and the ``efficient_generalized_steps`` of its reference code):

* unseen:                 c' = c0 + sqrt(1 - eta^2) sigma' eps_c + eta sigma' z
* noisier than y (s sigma' > sigma_y):   c' = eta_b (U^T y)_i / s_i + (1 - eta_b) c0 + sqrt(sigma'^2 - eta_b^2 sigma_y^2 / s_i^2) z
* less noisy than y:      c' = c0 + sqrt(1 - eta^2) sigma' (y_i - s_i c0) / sigma_y + eta sigma' z

with sigma' = sqrt(1 - alpha_bar_s) / sqrt(alpha_bar_s) the next noise level of the "variance
exploding" view x / sqrt(alpha_bar), c0 = V^T x0_t and eps_c = V^T eps. Then x_s = sqrt(alpha_bar_s) V c'.

Covered operators (those with a simple real SVD here): Denoising, Inpainting, Colorization,
SuperResolution (average pooling) and CompressedSensing. Deblur (a complex Fourier basis) and
Composite are not covered. Simplification: x_T ~ N(0, I) instead of DDRM's y-conditioned start
(for T = 1000 the difference is of order sqrt(alpha_bar_T) ~ 0.006).
"""
from __future__ import annotations

import math

import torch

from . import operators as ops
from .errors import DDNMInputError, check_finite, check_int_range, check_sigma_y
from .schedule import NoiseSchedule

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
            raise DDNMInputError(f"the DDRM-style sampler covers Denoising, Inpainting, Colorization, "
                                 f"SuperResolution and CompressedSensing, not {op!r}.")

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


@torch.no_grad()
def ddrm(model, sched: NoiseSchedule, op: ops.LinearOperator, y: Tensor, sigma_y: float = 0.0, steps: int = 100,
         eta: float = 0.85, eta_b: float = 1.0, seed: int = 0) -> Tensor:
    """DDRM-style restoration (see the module docstring); NFE = steps."""
    sigma_y = check_sigma_y(sigma_y)
    steps = check_int_range(steps, "steps", 1, sched.T)
    check_finite(y, "y")
    device = next(model.parameters()).device if hasattr(model, "parameters") else y.device
    y_device, y = y.device, y.to(device)
    x_like = op.A_pinv(y)
    spec = SpectralView(op, x_like)
    s = spec.s.to(x_like)  # (D,)
    ys = spec.y_coords(y)  # (B, D)
    seen = s > 0
    s_safe = torch.where(seen, s, torch.ones_like(s))
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(x_like.shape, generator=gen).to(x_like)
    for t, t_prev in sched.timestep_pairs(steps):
        z = torch.randn(x.shape, generator=gen).to(x).reshape(x.shape[0], -1)
        ab_s = float(sched.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).to(x.dtype)
        x0_t = sched.predict_x0(x, eps, t).clamp(-1, 1)  # DDNM Algorithm 1, line 3
        sig_next = math.sqrt(1 - ab_s) / math.sqrt(ab_s)
        c0, ce = spec.Vt(x0_t), spec.Vt(eps)
        out = c0 + math.sqrt(1 - eta ** 2) * sig_next * ce + eta * sig_next * z  # unseen directions
        before = seen & (s * sig_next > sigma_y)
        after = seen & (s * sig_next < sigma_y)
        if before.any():
            var = (sig_next ** 2 - (eta_b * sigma_y / s_safe) ** 2).clamp(min=0)
            c_before = eta_b * ys / s_safe + (1 - eta_b) * c0 + var.sqrt() * z
            out = torch.where(before, c_before, out)
        if after.any():
            c_after = c0 + math.sqrt(1 - eta ** 2) * sig_next * (ys - s * c0) / sigma_y + eta * sig_next * z
            out = torch.where(after, c_after, out)
        x = math.sqrt(ab_s) * spec.V(out)
    return x.to(y_device)
