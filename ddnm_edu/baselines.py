"""Classical restorers to compare DDNM with (no learning, no prior beyond smoothness).

* ``bicubic_upsample`` -- super-resolution by bicubic interpolation of y.
* ``biharmonic_inpaint`` -- fills the missing pixels with a smooth (biharmonic) surface (scikit-image).
* ``wiener_deconvolve`` -- deblurring with a Wiener filter.
The range-only answer A^dagger y is ``op.A_pinv(y)``; :func:`classical` picks the method for an operator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .operators import Deblur, Inpainting, SuperResolution

Tensor = torch.Tensor


def bicubic_upsample(y: Tensor, scale: int) -> Tensor:
    """(B, C, h, w) -> (B, C, h*scale, w*scale) by bicubic interpolation (half-pixel centres)."""
    return F.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False)


def biharmonic_inpaint(y: Tensor, op: Inpainting) -> Tensor:
    """Biharmonic inpainting of the pixels where ``op.mask`` is 0 (scikit-image)."""
    from skimage.restoration import inpaint_biharmonic

    out = []
    for img in y.detach().cpu().double().numpy():  # (C, H, W)
        m = op.mask.expand(img.shape).numpy() < 0.5 if op.mask.shape[0] == 1 else op.mask.numpy() < 0.5
        chans = [inpaint_biharmonic(img[c], m[c]) for c in range(img.shape[0])]
        out.append(np.stack(chans))
    return torch.from_numpy(np.stack(out)).to(y)


def classical(op, y: Tensor) -> tuple[str, Tensor] | None:
    """(name, result) of the classical method for operator ``op``, or None where there is none
    (colorization: gray replication *is* A^dagger y; compressed sensing; denoising)."""
    if isinstance(op, SuperResolution):
        return "bicubic", bicubic_upsample(y, op.scale)
    if isinstance(op, Inpainting):
        return "biharmonic", biharmonic_inpaint(y, op)
    if isinstance(op, Deblur):
        return "Wiener", wiener_deconvolve(y, op, nsr=1e-3)
    return None


def wiener_deconvolve(y: Tensor, op: Deblur, nsr: float = 1e-3) -> Tensor:
    """Wiener filter conj(K) / (|K|^2 + nsr): the regularised inverse of the blur."""
    H, W = y.shape[-2:]
    K, _ = op.transfer(H, W, y)
    G = K.conj() / (K.abs() ** 2 + nsr)
    return torch.fft.irfft2(torch.fft.rfft2(y) * G, s=(H, W)).to(y.dtype)
