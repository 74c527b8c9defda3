"""Image-quality metrics on [-1, 1] batches (B, C, H, W); every function returns one value per image (B,).

* ``psnr``: 10 log10(L^2 / MSE) with data range L = 2 (the same number as on [0, 1] images with L = 1).
  An exact reconstruction has MSE = 0 and infinite PSNR; one such image makes a *mean* PSNR
  meaningless. Tables therefore pass ``max_db=PSNR_CAP_DB`` (58.9 dB): the PSNR of the rounding error
  of 8-bit storage (uniform error of half a level, variance (L/255)^2 / 12). A smaller error cannot
  survive being saved as a PNG, so no method is credited for it -- the cap applies to every method alike.
* ``ssim``: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  averaged over the valid region and the channels -- the same as scikit-image's
  ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=2)``, which the tests check.
* ``consistency``: ||A x0_hat - y|| / ||y|| (or the plain norm), the paper's "Cons" in relative form.

Images are clipped to [-1, 1] first (``clip=True``), as they are when shown or saved.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import DDNMInputError, check_image_batch
from .operators import LinearOperator

Tensor = torch.Tensor


def _pair(a: Tensor, b: Tensor, clip: bool) -> tuple[Tensor, Tensor]:
    check_image_batch(a, "a")
    check_image_batch(b, "b")
    if a.shape != b.shape:
        raise DDNMInputError(f"images to compare must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    return (a.clamp(-1, 1), b.clamp(-1, 1)) if clip else (a, b)


def mse(a: Tensor, b: Tensor, clip: bool = True) -> Tensor:
    a, b = _pair(a, b, clip)
    return ((a - b) ** 2).flatten(1).mean(1)


PSNR_CAP_DB: float = 10 * math.log10(12 * 255**2)  # 58.92 dB: MSE of 8-bit rounding, (L/255)^2 / 12


def psnr(a: Tensor, b: Tensor, data_range: float = 2.0, clip: bool = True, max_db: float | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB, per image (B,).

    ``max_db``: cap each image's PSNR (tables use ``PSNR_CAP_DB``). Without it an exact match gives
    ~206 dB (the MSE is floored at 1e-20 to stay finite).
    """
    return psnr_from_mse(mse(a, b, clip), data_range, max_db)


def psnr_from_mse(m: Tensor, data_range: float = 2.0, max_db: float | None = None) -> Tensor:
    """PSNR = 10 log10(L^2 / MSE) in dB for given mean squared errors (e.g. predicted ones); as ``psnr``."""
    if max_db is not None and not max_db > 0:
        raise DDNMInputError(f"max_db must be a positive number of dB, got {max_db}.")
    p = 10 * torch.log10(data_range**2 / m.clamp_min(1e-20))
    return p if max_db is None else p.clamp_max(max_db)


def _gauss(sigma: float, truncate: float = 3.5) -> Tensor:
    r = int(truncate * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def ssim(a: Tensor, b: Tensor, data_range: float = 2.0, sigma: float = 1.5, clip: bool = True) -> Tensor:
    """Structural similarity per image (B,), Gaussian-weighted, valid region only."""
    a, b = _pair(a, b, clip)
    k = _gauss(sigma).to(a.device)
    w = len(k)
    if min(a.shape[-2:]) < w:
        raise DDNMInputError(f"SSIM needs images of at least {w}x{w} pixels, got {tuple(a.shape[-2:])}.")
    C = a.shape[1]
    kx = k.reshape(1, 1, 1, w).repeat(C, 1, 1, 1)
    ky = k.reshape(1, 1, w, 1).repeat(C, 1, 1, 1)

    def filt(z: Tensor) -> Tensor:  # separable Gaussian filter, valid region
        return F.conv2d(F.conv2d(z, kx, groups=C), ky, groups=C)

    mu_a, mu_b = filt(a), filt(b)
    s_aa = filt(a * a) - mu_a**2
    s_bb = filt(b * b) - mu_b**2
    s_ab = filt(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
    return s.flatten(1).mean(1)


def consistency(op: LinearOperator, x0_hat: Tensor, y: Tensor, relative: bool = True) -> Tensor:
    """||A x0_hat - y|| per image (relative to ||y|| by default). 0 means exactly consistent."""
    r = (op.A(x0_hat.to(device=y.device, dtype=y.dtype)) - y).flatten(1).double().norm(dim=1)
    if relative:
        r = r / y.flatten(1).double().norm(dim=1).clamp_min(1e-30)
    return r


def colourfulness(x: Tensor) -> Tensor:
    """Per-image mean distance of each pixel's colour from its own gray value, (B, 3, H, W) -> (B,).

    0 for a gray image. Used for colorization, where PSNR against the one true colour is a poor
    judge (the DDNM paper reports consistency and FID for colorization instead).
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise DDNMInputError(f"colourfulness needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}.")
    return (x - x.mean(1, keepdim=True)).abs().flatten(1).mean(1)
