"""DDNM+ noise scaling: the paper's scalar rule and a rule per singular direction.

With noisy measurements y = A x + n, n ~ N(0, sigma_y^2 I) (sigma_y on the book's [-1, 1] scale),
the rectified estimate x0_hat = x0_t - Sigma_t A^dagger (A x0_t - y) carries Sigma_t A^dagger n
(paper eq. 17), and a reverse step x_s = a_t x0_hat + (noise) passes it on as a_t Sigma_t A^dagger n.
The step should leave x_s with the noise it expects. The **noise budget** B_t is the std of the noise
the step is free to set in x_s:

* ``kind="ddim"`` / ``"ddim-paper"``: B_t = sqrt(1 - alpha_bar_s), all the noise x_s holds
  (fresh noise sigma_t z and the model's eps with weight c_eps: sigma_t^2 + c_eps^2 = 1 - alpha_bar_s);
* ``kind="ddpm"``: B_t = sigma_t, the posterior std (the paper's eq. 19 setting): only the fresh part,
  since the c_t x_t term carries noise inherited from x_t (c_t^2 (1 - alpha_bar_t) + sigma_t^2 =
  1 - alpha_bar_s).

The paper (eq. 18) asks for a_t^2 Sigma_t A^dagger (sigma_y^2 I) A^dagger^T Sigma_t + Phi_t = B_t^2 I,
with Phi_t the covariance of the noise the step adds. Two ways to satisfy it:

**Scalar rule** (``noise_rule="scalar"``; the paper's eq. 19 and its simplified code): Sigma_t = lambda_t I,
Phi_t = gamma_t I (gamma_t is a *variance*, as in the paper), treating A^dagger n as if it had
per-pixel variance sigma_y^2 in every direction:

    lambda_t = 1 if B_t >= a_t sigma_y, else B_t / (a_t sigma_y);    gamma_t = B_t^2 - (a_t lambda_t sigma_y)^2.

The noise the step adds is scaled by sqrt(gamma_t) / B_t (fresh noise and the eps term alike; the
official ``simplified_ddnm_plus`` scales the same terms by its own ``gamma_t``, see chapter 9's note).
Within one step this is exact only when A^dagger A^dagger^T = I (denoising).
Otherwise A^dagger n has covariance sigma_y^2 A^dagger A^dagger^T = sigma_y^2 V diag(1/s_i^2) V^T on the
measured directions and 0 on the null directions: for 4x average-pool SR each block mean direction gets
16 sigma_y^2, for colorization (1,1,1)/sqrt 3 gets 3 sigma_y^2, CS (orthonormal rows) gets sigma_y^2, and
the null directions (the missing pixels of inpainting too) get *less* than B_t^2. The paper calls the
scalar rule an approximation.

**SVD rules** (the paper's appendix Sigma_t = V diag(lambda_{t,i}) V^T): per measured direction i with
singular value s_i the noise of A^dagger n has std sigma_y / s_i, so the step's x_s receives
a_t lambda_{t,i} sigma_y / s_i there, and the rule budgets each direction separately. Two variants:

* ``noise_rule="svd"`` (this library's default SVD rule): eq. 19 applied per direction,
  lambda_{t,i} = min(1, B_t s_i / (a_t sigma_y)); the rest of the budget, B_t^2 - (a_t lambda_{t,i} sigma_y / s_i)^2,
  is split between fresh noise and the model's eps in the step's own proportions (eta^2 : 1 - eta^2),
  as in the scalar rule.
* ``noise_rule="svd-official"``: the coefficients of the official ``functions/svd_operators.py``
  ``Lambda`` / ``Lambda_noise``, applied in the true singular coordinates (the official ``Lambda_noise``
  scales z and eps in pixel coordinates and then applies V without V^T, which for eps is not the same;
  chapter 9):
  lambda_{t,i} = 1 and fresh noise sqrt(B_t^2 - a_t^2 sigma_y^2 / s_i^2) if B_t >= a_t sigma_y / s_i; otherwise
  lambda_{t,i} = s_i B_t sqrt(1 - eta^2) / (a_t sigma_y) and fresh noise eta B_t. Measured directions get
  no eps term at all (only fresh noise), and lambda jumps from 1 to sqrt(1 - eta^2) at the threshold.

In both, null directions take the plain DDIM step (fresh eta B_t, eps weight sqrt(1 - eta^2) B_t) and
every direction holds noise of variance exactly B_t^2 (:func:`noise_by_direction` checks it by Monte
Carlo). Here eta = sigma_t / B_t. Chapter 9 and ``benchmarks/noise-rules.md`` compare their PSNR.

With sigma_y = 0 both rules reduce to DDNM (lambda = 1, the step's own noise).
"""

from __future__ import annotations

import math

import torch

from .errors import DDNMInputError
from .operators import LinearOperator, SVDOperator, require_svd
from .schedule import NoiseSchedule, StepCoefs

Tensor = torch.Tensor
NOISE_RULES = ("scalar", "svd", "svd-official")


def check_rule(noise_rule: str, kind: str) -> None:
    """Refuse an unknown noise rule, or an SVD rule with DDPM steps (it is written for the DDIM step)."""
    if noise_rule not in NOISE_RULES:
        raise DDNMInputError(f"unknown noise_rule {noise_rule!r}; use one of {', '.join(NOISE_RULES)}.")
    if noise_rule != "scalar" and kind == "ddpm":
        raise DDNMInputError(
            f"noise_rule={noise_rule!r} is written for the DDIM step (kind='ddim' or 'ddim-paper'); "
            "use noise_rule='scalar' with kind='ddpm'."
        )


def noise_budget(c: StepCoefs, kind: str = "ddim") -> float:
    """B_t: the std of the noise the step is free to set in x_s (see the module docstring)."""
    sigma, c_eps = float(c.sigma), float(c.c_eps)
    return sigma if kind == "ddpm" else math.sqrt(sigma**2 + c_eps**2)


def lambda_and_std(budget: float, a_t: float, sigma_y: float) -> tuple[float, float]:
    """The scalar rule (paper eq. 19): (lambda_t, sqrt(gamma_t)) for noise budget B_t and x0_hat coefficient a_t.

    sqrt(gamma_t) is the std of the noise the step still adds; (a_t lambda_t sigma_y)^2 + gamma_t = B_t^2.
    """
    if budget >= a_t * sigma_y:
        return 1.0, max(budget**2 - (a_t * sigma_y) ** 2, 0.0) ** 0.5
    # lambda_t = B_t / (a_t sigma_y): the range noise a_t lambda_t sigma_y = B_t uses the whole budget
    return budget / (a_t * sigma_y), 0.0


def scalar_rule(c: StepCoefs, sigma_y: float, kind: str = "ddim") -> tuple[float, float]:
    """One step's (lambda_t, noise scale) under the scalar rule: Sigma_t = lambda_t I (eq. 19), and the
    step's noise (fresh z and eps alike) scaled by sqrt(gamma_t) / B_t. With sigma_y = 0: (1, 1), DDNM."""
    if sigma_y == 0:
        return 1.0, 1.0
    sigma, c_eps = float(c.sigma), float(c.c_eps)
    budget = sigma if kind == "ddpm" else math.sqrt(sigma**2 + c_eps**2)  # B_t (noise_budget)
    lam, std = lambda_and_std(budget, float(c.c_x0), sigma_y)
    return lam, (std / budget if budget > 0 else 0.0)


def svd_rule(c: StepCoefs, s: Tensor, sigma_y: float, noise_rule: str = "svd") -> tuple[Tensor, Tensor, Tensor]:
    """One step's (lambda_i, fresh-noise std d1_i, eps weight d2_i) per coordinate of V^T x, for the
    singular values ``s`` (0 = null direction); see the module docstring for both variants. Line 5 is
    then x_next = c_x0 x0_hat + V (d1 V^T z + d2 V^T eps)."""
    sigma, c_eps, a = float(c.sigma), float(c.c_eps), float(c.c_x0)
    budget = noise_budget(c, "ddim")
    eta = sigma / budget if budget > 0 else 0.0
    seen = s > 0
    one = torch.ones_like(s)
    thr = a * sigma_y / torch.where(seen, s, one)  # a_t x (std of A^dagger n) along each direction
    if noise_rule == "svd-official":
        full = seen & (budget >= thr)
        damped = s * budget * math.sqrt(max(1 - eta**2, 0.0)) / (a * sigma_y)
        lam = torch.where(full, one, torch.where(seen, damped, one))
        d1 = torch.where(full, (budget**2 - thr**2).clamp(min=0).sqrt(), sigma * one)
        d2 = torch.where(seen, torch.zeros_like(s), c_eps * one)
        return lam, d1, d2
    lam = torch.where(seen, (budget / thr).clamp(max=1.0), one)
    rest = torch.where(seen, (budget**2 - (lam * thr) ** 2).clamp(min=0).sqrt(), budget * one)
    return lam, eta * rest, math.sqrt(max(1 - eta**2, 0.0)) * rest


#: The scalar rule budgets A^dagger n as noise of std sigma_y; beyond this gain 1 / s_i it fails badly
#: (chapter 9: deblurring, gain ~950, scores like plain DDNM, 14 dB or more below the SVD rules).
SCALAR_GAIN_LIMIT = 10.0


def warn_if_scalar_fails(op: LinearOperator, x_shape: tuple[int, int, int]) -> None:
    """Warn when A^dagger amplifies noise so much that the scalar rule is the wrong choice."""
    if not isinstance(op, SVDOperator):
        return
    s = op.singular_values(x_shape)
    gain = float(1 / s[s > 0].min()) if bool((s > 0).any()) else 1.0
    if gain > SCALAR_GAIN_LIMIT:
        from .errors import warn_user

        warn_user(
            f"{op!r}: A^dagger amplifies noise up to {gain:.0f}x in some directions, and the scalar "
            "noise rule budgets it as if it were 1x; use noise_rule='svd' (ddnm-edu restore --noise-rule svd; "
            "chapter 9)."
        )


@torch.no_grad()
def noise_by_direction(
    op: LinearOperator,
    sched: NoiseSchedule,
    shape: tuple[int, int, int],
    t: int,
    t_next: int,
    sigma_y: float,
    eta: float = 0.85,
    noise_rule: str = "scalar",
    n: int = 4000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Monte Carlo: the noise one DDNM+ step leaves in x_s, per singular direction of A.

    A perfect model (x0_t = x, eps independent N(0, I)) and y = A x + sigma_y n; the noise is
    x_s - a_t x in the coordinates V^T. Returns ``{group: (measured variance, target B_t^2)}`` with
    groups ``"null"`` and ``"s=<singular value>"``. A correct rule gives measured ~ target in each group.
    """
    check_rule(noise_rule, "ddim")
    op = require_svd(op, "noise_by_direction")
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros((n, *shape), dtype=torch.float64)
    y = op.measure(x, sigma_y, generator=gen)
    eps = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    z = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    c = sched.step_coefs(t, t_next, eta, "ddim")
    s = op.singular_values(shape).to(x)
    if noise_rule == "scalar":  # the model's x0_t is the truth x; lines 4 and 5 as ddnm_plus_steps
        lam, scale = scalar_rule(c, sigma_y, "ddim")
        x_s = c.apply(op.project(x, y, lam), eps, x, z, scale)
    else:
        lam_i, d1, d2 = svd_rule(c, s, sigma_y, noise_rule)
        x0_hat = x - op.V(lam_i * op.Vt(op.A_pinv(op.A(x) - y)))
        x_s = c.c_x0 * x0_hat + op.V(d1 * op.Vt(z) + d2 * op.Vt(eps))
    noise = op.Vt(x_s - c.c_x0 * x)  # (n, *coordinates)
    var = noise.var(0)  # per coordinate (E|c - mean|^2 for the complex Fourier basis)
    target = noise_budget(c, "ddim") ** 2
    out: dict[str, tuple[float, float]] = {}
    if (s == 0).any():
        out["null"] = (float(var[s == 0].mean()), target)
    for value in torch.unique(s[s > 0]).tolist():
        out[f"s={value:.4g}"] = (float(var[(s - value).abs() < 1e-9].mean()), target)
    return out
