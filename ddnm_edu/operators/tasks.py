"""Named restoration tasks: the one table from a task name to its operator A.

The CLI (``ddnm-edu restore --task``), the evaluation programs, the supervised specialists and the tests
all build their operators here. A name may end in ``-noisy<sigma_y>`` (``"sr4-noisy0.1"``): the same A,
measured with noise of that std (:func:`noise_level`), y = A x + sigma_y n (:meth:`LinearOperator.measure`).
"""

from __future__ import annotations

import re

import torch

from ..errors import DDNMInputError
from .base import LinearOperator
from .blocks import CompressedSensing, SuperResolution
from .blur import Deblur, gaussian_kernel
from .pixels import Colorization, Denoising, Inpainting

#: task name -> what it is (the operator :func:`from_name` builds)
TASKS = {
    "sr2": "2x average-pool super-resolution",
    "sr4": "4x average-pool super-resolution",
    "inpaint": "inpainting with your own mask (mask=...; 1 = observed)",
    "inpaint-random50": "inpainting, 50 % of the pixels missing at random (seed 0)",
    "inpaint-box12": "inpainting, a centred 12 x 12 box missing",
    "colorize": "colorization (the gray value is the mean of R, G, B)",
    "cs25": "block compressed sensing, 25 % of the measurements (seed 0, 32 x 32 blocks)",
    "deblur": "Gaussian deblurring, blur_sigma px (default 1), rcond 1e-3",
    "deblur-gauss1": "Gaussian deblurring, 1 px, rcond 1e-3 (the benchmarks' name)",
    "denoise": "denoising (A = I)",
}
_NOISY = re.compile(r"^(?P<base>.+)-noisy(?P<sigma>\d+(\.\d+)?)$")


def split_name(name: str) -> tuple[str, float]:
    """("sr4", 0.1) for "sr4-noisy0.1"; (name, 0.0) for a noise-free name."""
    m = _NOISY.match(name)
    return (m["base"], float(m["sigma"])) if m else (name, 0.0)


def noise_level(name: str) -> float:
    """The sigma_y a task name asks for (0 unless it ends in ``-noisy<sigma_y>``)."""
    return split_name(name)[1]


def from_name(name: str, size: int = 32, mask: torch.Tensor | None = None, blur_sigma: float = 1.0) -> LinearOperator:
    """The operator of task ``name`` (:data:`TASKS`) for ``size`` x ``size`` images."""
    base, _ = split_name(name)
    if base not in TASKS:
        raise DDNMInputError(f"unknown task {name!r}; available: {', '.join(TASKS)} (and <task>-noisy<sigma_y>).")
    if base in ("sr2", "sr4"):
        return SuperResolution(int(base[2:]))
    if base == "inpaint":
        if mask is None:
            raise DDNMInputError(
                "task inpaint needs a mask (white/1 = observed, black/0 = missing); in the "
                "command line: --mask MASK.png."
            )
        return Inpainting(mask)
    if base == "inpaint-random50":
        return Inpainting(Inpainting.random_mask(size, 0.5, seed=0))
    if base == "inpaint-box12":
        return Inpainting(Inpainting.box_mask(size, 12))
    if base == "cs25":
        return CompressedSensing(0.25, seed=0)
    if base.startswith("deblur"):
        return Deblur(gaussian_kernel(1.0 if base == "deblur-gauss1" else blur_sigma), rcond=1e-3)
    return {"colorize": Colorization, "denoise": Denoising}[base]()
