"""A DDRM-style sampler (Kawar et al. 2022), for the comparison with DDNM.

DDRM works in the singular basis of A = U S V^T. In the coordinates c = V^T x each direction is either
unseen (s_i = 0) or measured with an effective noise level sigma_y / s_i, and each is sampled
differently (DDRM eq. 7-8, and the ``efficient_generalized_steps`` of its reference code):

* unseen:                 c' = c0 + sqrt(1 - eta^2) sigma' eps_c + eta sigma' z
* noisier than y (s sigma' > sigma_y):
                          c' = eta_b (U^T y)_i / s_i + (1 - eta_b) c0 + sqrt(sigma'^2 - eta_b^2 sigma_y^2 / s_i^2) z
* less noisy than y:      c' = c0 + sqrt(1 - eta^2) sigma' (y_i - s_i c0) / sigma_y + eta sigma' z

with sigma' = sqrt(1 - alpha_bar_s) / sqrt(alpha_bar_s) the next noise level of the "variance
exploding" view x / sqrt(alpha_bar), c0 = V^T x0_t and eps_c = V^T eps. Then x_s = sqrt(alpha_bar_s) V c'.

Covered operators: every :class:`~ddnm_edu.operators.SVDOperator` (``op.singular_values``, ``op.Vt``, ``op.V``):
Denoising, Inpainting, Colorization, SuperResolution (average pooling), CompressedSensing and Deblur
(the Fourier basis, complex coordinates); not Composite. Simplification: x_T ~ N(0, I) instead of DDRM's
y-conditioned start
(for T = 1000 the difference is of order sqrt(alpha_bar_T) ~ 0.006).
"""

from __future__ import annotations

import math

import torch

from . import operators as ops
from .errors import check_finite, check_int_range, check_sigma_y
from .rng import generators
from .sampling import randn
from .schedule import NoiseSchedule
from .book_scale import model_device

Tensor = torch.Tensor


@torch.no_grad()
def ddrm(
    model,
    sched: NoiseSchedule,
    op: ops.LinearOperator,
    y: Tensor,
    *,
    sigma_y: float = 0.0,
    steps: int = 100,
    eta: float = 0.85,
    eta_b: float = 1.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    seed: int | None = None,
) -> Tensor:
    """DDRM-style restoration (see the module docstring); NFE = steps. Noise from ``generator``
    (one, or one per image) or ``seed`` (not both; ``rng.generators``): x_T, then one z per step."""
    sigma_y = check_sigma_y(sigma_y)
    steps = check_int_range(steps, "steps", 1, sched.T)
    check_finite(y, "y")
    device = model_device(model, y.device)
    y_device, y = y.device, y.to(device)
    x_like = op.A_pinv(y)
    op = ops.require_svd(op, "the DDRM-style sampler")
    s = op.singular_values(tuple(x_like.shape[1:])).to(x_like)  # one per coordinate of V^T x
    ys = op.y_coords(y)  # U^T y at the coordinates it measures
    seen = s > 0
    s_safe = torch.where(seen, s, torch.ones_like(s))
    gen = generators(generator, seed, x_like.shape[0])
    x = randn(x_like.shape, gen, device=x_like.device).to(x_like)
    for t, t_next in sched.timestep_pairs(steps):
        z = randn(x.shape, gen, device=x.device).to(x)
        ab_s = float(sched.alphas_cumprod[t_next]) if t_next >= 0 else 1.0
        eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).to(x.dtype)
        x0_t = sched.predict_x0(x, eps, t).clamp(-1, 1)  # DDNM Algorithm 1, line 3
        sig_next = math.sqrt(1 - ab_s) / math.sqrt(ab_s)
        c0, ce = op.Vt(x0_t), op.Vt(eps)
        # white noise in the coordinates: a real orthonormal V^T takes z's values as they are (any layout
        # of white noise is white noise); a complex Fourier basis needs V^H z (conjugate-symmetric)
        z = op.Vt(z) if c0.is_complex() else z.reshape(c0.shape)
        out = c0 + math.sqrt(1 - eta**2) * sig_next * ce + eta * sig_next * z  # unseen directions
        before = seen & (s * sig_next > sigma_y)
        after = seen & (s * sig_next < sigma_y)
        if before.any():
            var = (sig_next**2 - (eta_b * sigma_y / s_safe) ** 2).clamp(min=0)
            c_before = eta_b * ys / s_safe + (1 - eta_b) * c0 + var.sqrt() * z
            out = torch.where(before, c_before, out)
        if after.any():
            c_after = c0 + math.sqrt(1 - eta**2) * sig_next * (ys - s * c0) / sigma_y + eta * sig_next * z
            out = torch.where(after, c_after, out)
        x = math.sqrt(ab_s) * op.V(out)
    return x.to(y_device)
