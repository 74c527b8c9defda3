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

When m covers whole blocks of A (whole k x k blocks for k-times super-resolution, any pixels for
inpainting, colorization or denoising), m commutes with A^dagger A and A_w is an orthogonal projector:
its own pseudo-inverse. Line 4 with (A_w, y_w) is then exactly the official "project, then overwrite"
-- and x0_hat is consistent with y and with the known pixels at once, so the stitched result is
consistent with y everywhere. Nothing else changes: :func:`restore_large` calls the same
:func:`~ddnm_edu.sampling.ddnm_plus` once per window.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from .errors import DDNMInputError
from .operators import Colorization, Denoising, Inpainting, LinearOperator, SuperResolution
from .rng import image_streams, stream_ids
from .sampling import SamplerSettings, ddnm_plus
from .schedule import NoiseSchedule

Tensor = torch.Tensor


def window_starts(length: int, window: int, overlap: int, grid: int = 1) -> list[int]:
    """Where the windows along one side start: every ``window - overlap`` pixels, the last one moved back
    to end at the border (as the official code does for sizes that are not a multiple of the stride).
    Every start is a multiple of ``grid`` (an operator's block side), so each window holds whole blocks."""
    if window % grid:
        raise DDNMInputError(
            f"the window {window} is not a multiple of the operator's block side {grid}, so a "
            "window cannot hold whole blocks; use a model whose size the scale divides."
        )
    if length % grid:
        raise DDNMInputError(f"the image side {length} is not a multiple of the operator's block side {grid}.")
    if window > length:
        raise DDNMInputError(
            f"the image side {length} is smaller than the window {window}; resize the image to "
            f"at least {window} pixels."
        )
    whole = isinstance(overlap, numbers.Integral) and not isinstance(overlap, bool)
    if not whole or not 0 <= overlap < window or (window - overlap) % grid:
        raise DDNMInputError(
            f"the overlap must be a whole number of pixels in [0, {window}) with window - overlap "
            f"a multiple of {grid} (whole blocks of the operator), e.g. "
            f"{_default_overlap(window, grid)}; got {overlap!r}."
        )
    starts = list(range(0, length - window + 1, window - overlap))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


# --------------------------------------------------------------------------- one window of each operator
#: the operators that act on each pixel (or block) locally: a window of y measures a window of x
WINDOWED = (SuperResolution, Inpainting, Colorization, Denoising)


def grid(op: LinearOperator) -> int:
    """Window corners and sizes must lie on this pixel grid: a super-resolution block's side, else 1."""
    return op.scale if isinstance(op, SuperResolution) else 1


def window_of(op: LinearOperator, y: Tensor, top: int, left: int, size: int) -> tuple[LinearOperator, Tensor]:
    """(A_w, y_w): the operator and measurement of the ``size`` x ``size`` window of x at (top, left)."""
    if not isinstance(op, WINDOWED):
        raise DDNMInputError(
            f"{op!r} mixes pixels across the whole image, so a window of y does not "
            "measure a window of x; mask-shift restoration needs a local operator "
            "(sr2, sr4, inpaint, colorize, denoise)."
        )
    if isinstance(op, SuperResolution):  # y holds one number per s x s block
        s = op.scale
        if top % s or left % s or size % s:
            raise DDNMInputError(
                f"a window of {op!r} must hold whole {s}x{s} blocks; got corner ({top}, {left}) and size {size}."
            )
        return op, y[..., top // s : (top + size) // s, left // s : (left + size) // s]
    y_w = y[..., top : top + size, left : left + size]
    if isinstance(op, Inpainting):  # the window's part of the mask
        op.A_pinv(y)  # the mask fits the whole image (one clear line if not)
        return Inpainting(op.mask[..., top : top + size, left : left + size]), y_w
    return op, y_w  # colorization, denoising: the same operator on fewer pixels


def _default_overlap(window: int, grid: int = 1) -> int:
    """Half a window (the official code's 128 for 256), rounded down to whole blocks."""
    return window // 2 // grid * grid


class KnownPixels(LinearOperator):
    """A window's operator in mask-shift: ``base`` everywhere, and the pixels in ``known`` (1 = already
    restored) observed exactly. A_w x = m x + (1 - m) A^dagger A x is an orthogonal projector when m holds
    whole blocks of A, so A_w^dagger = A_w. Its measurement: :meth:`measurement`."""

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


def restore_large(
    model,
    sched: NoiseSchedule,
    op: LinearOperator,
    y: Tensor,
    *,
    window: int,
    overlap: int | None = None,
    sigma_y: float = 0.0,
    steps: int = 100,
    settings: SamplerSettings | None = None,
    seed: int = 0,
    image_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> Tensor:
    """DDNM on an image larger than the prior's ``window`` x ``window``, by mask-shift (module docstring).

    ``op`` and ``y`` describe the whole image (e.g. ``SuperResolution(4)`` and a 16 x 16 y for a 64 x 64
    result); ``overlap`` defaults to half a window, as the official code. Windows are restored in rows
    from the top left; window k of image i draws from ``rng.spawn(seed, "image", image_ids[i],
    "window", k)`` (``image_ids`` default 0..B-1). Returns x0_hat for the whole image, on y's device.
    With ``sigma_y > 0`` the scalar noise rule is used (the SVD rules need an SVD of each window's
    operator, which the known pixels do not have). A simplification: the known pixels are earlier
    windows' results, not noisy measurements, yet the scalar rule gives them the same lambda_t < 1 as
    y's part, so they are only partly enforced and the seams are less exact than with noise-free y.
    """
    g = grid(op)
    overlap = _default_overlap(window, g) if overlap is None else overlap
    shape = op.x_shape(y)
    B, C, H, W = shape
    if H < window or W < window:
        h, w = y.shape[-2:]
        raise DDNMInputError(
            f"y is {w}x{h}, which restores a {W}x{H} image, smaller than the window {window}; "
            f"y must be at least {window // g}x{window // g} (resize it)."
        )
    if sigma_y > 0 and settings is not None and settings.noise_rule != "scalar":
        raise DDNMInputError(
            f"mask-shift with sigma_y > 0 needs noise_rule='scalar' (a window's known pixels "
            f"have no SVD view); got noise_rule={settings.noise_rule!r}."
        )
    ids = stream_ids(image_ids, B)
    tops = window_starts(H, window, overlap, g)
    lefts = window_starts(W, window, overlap, g)
    canvas = torch.zeros(shape, dtype=y.dtype, device=y.device)
    done = torch.zeros((1, 1, H, W), dtype=y.dtype, device=y.device)
    k = 0  # window k, in rows from the top left
    for top in tops:
        for left in lefts:
            sl = (..., slice(top, top + window), slice(left, left + window))
            op_w, y_w = window_of(op, y, top, left, window)
            known = done[sl][0]
            if known.any():
                op_w = KnownPixels(op_w, known)
                y_w = op_w.measurement(y_w, canvas[sl])
            res = ddnm_plus(
                model,
                sched,
                op_w,
                y_w,
                sigma_y=sigma_y,
                steps=steps,
                settings=settings or SamplerSettings(),
                progress=progress,
                generator=image_streams(seed, ids, "window", k),
            )
            canvas[sl] = res.x0_hat.to(canvas)
            done[sl] = 1
            k += 1
    return canvas
