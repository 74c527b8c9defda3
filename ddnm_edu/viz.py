"""Pictures for the book: image grids, range/null decompositions, and the per-step DDNM viewer.

Everything here takes (B, C, H, W) / (C, H, W) tensors in [-1, 1]. matplotlib (and ipywidgets for
the live viewer) come with the ``book`` extra and are imported only when a function needs them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

Tensor = torch.Tensor


def to_display(x: Tensor, size: int | None = None) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) in [-1, 1] -> (H, W) or (H, W, 3) float array in [0, 1].

    ``size`` enlarges small images (e.g. a low-resolution y) by pixel replication, so they are shown
    at the same scale as the others. Images with a channel count other than 1 or 3 (e.g. CS
    measurements) are shown as their first channel.
    """
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="nearest")[0]
    x = ((x.clamp(-1, 1) + 1) / 2).numpy()
    if x.shape[0] == 3:
        return x.transpose(1, 2, 0)
    return x[0]


def show_images(images: Sequence[Tensor], titles: Sequence[str] | None = None, ncols: int | None = None,
                scale: float = 1.7, size: int | None = None, signed: Sequence[bool] | None = None,
                suptitle: str | None = None):
    """A row (or grid) of images with titles; returns the matplotlib figure.

    ``signed[i] = True`` shows image i with a diverging colour map centred on 0 (for null-space
    parts, differences, noise), scaled to its own largest magnitude.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    size = size or max(int(im.shape[-1]) for im in images)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + (0.3 if titles else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        im = images[k]
        if signed is not None and signed[k]:
            arr = im.detach().float().cpu()
            arr = arr[0] if arr.ndim == 4 else arr
            arr = torch.nn.functional.interpolate(arr[None], size=(size, size), mode="nearest")[0]
            arr = arr.mean(0).numpy()
            m = float(np.abs(arr).max()) or 1.0
            ax.imshow(arr, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        else:
            d = to_display(im, size)
            ax.imshow(d, cmap="gray" if d.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_decomposition(op, x: Tensor, title: str | None = None):
    """x, y = A x, A^dagger y (= range part), the null part (I - A^dagger A) x, and their sum."""
    y = op.A(x)
    r, nul = op.range_part(x), op.null_part(x)
    size = x.shape[-1]
    y_show = y if y.shape[1] in (1, 3) else op.A_pinv(y)
    return show_images([x, y_show, r, nul, r + nul],
                       ["x", "y = A x", "A†y = A†A x", "(I − A†A) x", "sum = x"],
                       size=size, signed=[False, False, False, True, False], suptitle=title)
