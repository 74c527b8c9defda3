"""Mask-shift restoration: DDNM on an image larger than the prior, window by window.

A prior trained on ``size`` x ``size`` images restores only that size. The official DDNM code restores
larger images by **mask-shift** (``hq_demo/guided_diffusion/gaussian_diffusion.py``, "mask-shift
trick"; Wang et al., arXiv:2303.00354, section 3.3): it slides a window of the model's size over the
image, in rows from the top left, by half a window (the official stride is 128 for 256 x 256 windows;
the last window of a row or column is moved back to end at the image's border). Every window is one
ordinary DDNM run. Its measurement is the window's part of y **and** the pixels that earlier windows
have already restored: after line 4's projection, x0_hat = x0_t - A^dagger (A x0_t - y), those pixels
are overwritten with the restored ones, at every step. The overlap is thus treated as observed, and the
new window continues the old one across the seam instead of inventing a different image there.

Here the overwrite is an operator, :class:`KnownPixels`: with m the mask of known pixels,

    A_w x = m x + (1 - m) A^dagger A x,        y_w = m x_known + (1 - m) A^dagger y.

When m covers whole blocks of A (whole s x s blocks for s-times super-resolution, any pixels for
inpainting, colorization or denoising), m commutes with A^dagger A and A_w is an orthogonal projector:
its own pseudo-inverse. Line 4 with (A_w, y_w) is then exactly the official "project, then overwrite"
-- and x0_hat is consistent with y and with the known pixels at once, so the stitched result is
consistent with y everywhere. Nothing else changes: :func:`restore_large` calls the same
:func:`~ddnm_edu.sampling.ddnm_plus` once per window.
"""
from __future__ import annotations

import torch

from .errors import DDNMInputError
from .operators import LinearOperator
from .sampling import SamplerSettings, ddnm_plus
from .schedule import NoiseSchedule

Tensor = torch.Tensor


def window_starts(length: int, window: int, overlap: int, grid: int = 1) -> list[int]:
    """Where the windows along one side start: every ``window - overlap`` pixels, the last one moved back
    to end at the border (as the official code does for sizes that are not a multiple of the stride)."""
    if window > length:
        raise DDNMInputError(f"the image side {length} is smaller than the window {window}; resize the image to "
                             f"at least {window} pixels.")
    stride = window - overlap
    if not 0 <= overlap < window or stride % grid or length % grid:
        raise DDNMInputError(f"overlap must be in [0, {window}) with window - overlap a multiple of {grid} "
                             f"(whole blocks of the operator), got overlap {overlap}.")
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


class KnownPixels(LinearOperator):
    """A window's operator in mask-shift: ``base`` everywhere, and the pixels in ``known`` (1 = already
    restored) observed exactly. A_w x = m x + (1 - m) A^dagger A x is an orthogonal projector when m holds
    whole blocks of A, so A_w^dagger = A_w. Its measurement: :meth:`measurement`."""

    name = "known-pixels"

    def __init__(self, base: LinearOperator, known: Tensor):
        self.base, self.m = base, known.float()  # (1 or C, H, W) or (B, C, H, W)

    def A(self, x: Tensor) -> Tensor:
        m = self.m.to(x)
        return m * x + (1 - m) * self.base.range_part(x)

    def A_pinv(self, y: Tensor) -> Tensor:  # a projector is its own pseudo-inverse
        return self.A(y)

    def A_adjoint(self, y: Tensor) -> Tensor:  # and symmetric
        return self.A(y)

    def measurement(self, y: Tensor, x_known: Tensor) -> Tensor:
        """y_w = m x_known + (1 - m) A^dagger y, from the window's y and the restored pixels."""
        m = self.m.to(x_known)
        return m * x_known + (1 - m) * self.base.A_pinv(y).to(x_known)

    def project(self, x0_t: Tensor, y: Tensor, lam: float | Tensor = 1.0) -> Tensor:
        """Line 4 (DDNM+ eq. 17 with lam = lambda_t), then the known pixels overwritten, as the official code
        does; with lam = 1 the overwrite changes nothing (they are already y_w there)."""
        m = self.m.to(x0_t)
        return m * y + (1 - m) * (x0_t - lam * self.A_pinv(self.A(x0_t) - y))

    def __repr__(self) -> str:
        return f"KnownPixels({self.base!r})"


def restore_large(model, sched: NoiseSchedule, op: LinearOperator, y: Tensor, window: int,
                  overlap: int | None = None, sigma_y: float = 0.0, steps: int = 100,
                  settings: SamplerSettings | None = None, seed: int = 0, progress: bool = False) -> Tensor:
    """DDNM on an image larger than the prior's ``window`` x ``window``, by mask-shift (module docstring).

    ``op`` and ``y`` describe the whole image (e.g. ``SuperResolution(4)`` and a 16 x 16 y for a 64 x 64
    result); ``overlap`` defaults to half a window, as the official code. Windows are restored in rows
    from the top left; window k uses seed ``seed + k``. Returns x0_hat for the whole image, on y's device.
    """
    overlap = window // 2 if overlap is None else int(overlap)
    shape = op.x_shape(y)
    B, C, H, W = shape
    tops = window_starts(H, window, overlap, op.grid)
    lefts = window_starts(W, window, overlap, op.grid)
    canvas = torch.zeros(shape, dtype=y.dtype, device=y.device)
    done = torch.zeros((1, 1, H, W), dtype=y.dtype, device=y.device)
    k = 0
    for top in tops:
        for left in lefts:
            sl = (..., slice(top, top + window), slice(left, left + window))
            op_w, y_w = op.window(y, top, left, window)
            known = done[sl][0]
            if known.any():
                op_w = KnownPixels(op_w, known)
                y_w = op_w.measurement(y_w, canvas[sl])
            res = ddnm_plus(model, sched, op_w, y_w, sigma_y=sigma_y, steps=steps,
                            settings=settings or SamplerSettings(), seed=seed + k, progress=progress)
            canvas[sl] = res.x0_hat.to(canvas)
            done[sl] = 1
            k += 1
    return canvas
