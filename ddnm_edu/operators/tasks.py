"""Named restoration tasks: the one table from a task name to its operator A, sigma_y and description.

The CLI (``ddnm-edu restore --task``), the evaluation programs, the supervised specialists and the tests
all read it. A task is A together with the noise its measurements carry, y = A x + sigma_y n
(:meth:`LinearOperator.measure`); ``sr4-noisy0.1`` is ``sr4``'s A with sigma_y = 0.1 (on the book's
[-1, 1] scale). The name is only a key: sigma_y is the :class:`Task`'s field, never parsed from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import DDNMInputError
from .base import LinearOperator
from .blocks import CompressedSensing, SuperResolution
from .blur import Deblur, gaussian_kernel
from .pixels import Colorization, Denoising, Inpainting


@dataclass(frozen=True)
class Task:
    """One restoration task: what it is, how to build its A, and the sigma_y of its measurements.

    ``build(size, mask, blur_sigma)`` returns the operator (most tasks ignore the arguments);
    ``restores_files``: ``ddnm-edu restore --task`` takes it, with y read from an image file and sigma_y
    given by ``--sigma-y``."""

    about: str
    build: Callable[[int, torch.Tensor | None, float], LinearOperator]
    sigma_y: float = 0.0
    restores_files: bool = False


def _mask(size: int, mask: torch.Tensor | None, blur_sigma: float) -> LinearOperator:
    if mask is None:
        raise DDNMInputError(
            "task inpaint needs a mask (white/1 = observed, black/0 = missing); in the command line: --mask MASK.png."
        )
    return Inpainting(mask)


def _noisy(base: str, sigma_y: float) -> Task:
    """``base``'s A, measured with noise of std sigma_y."""
    return Task(f"{TASKS[base].about}, sigma_y = {sigma_y} on [-1, 1]", TASKS[base].build, sigma_y)


#: task name -> :class:`Task`. The noisy entries are the evaluations' (chapter 9's and 11's) problems.
TASKS: dict[str, Task] = {
    "sr2": Task("2x average-pool super-resolution", lambda *_: SuperResolution(2), restores_files=True),
    "sr4": Task("4x average-pool super-resolution", lambda *_: SuperResolution(4), restores_files=True),
    "inpaint": Task("inpainting with your own mask (mask=...; 1 = observed)", _mask, restores_files=True),
    "inpaint-random50": Task(
        "inpainting, 50 % of the pixels missing at random (seed 0)",
        lambda size, *_: Inpainting(Inpainting.random_mask(size, 0.5, seed=0)),
    ),
    "inpaint-box12": Task(
        "inpainting, a centred 12 x 12 box missing", lambda size, *_: Inpainting(Inpainting.box_mask(size, 12))
    ),
    "colorize": Task(
        "colorization (the gray value is the mean of R, G, B)", lambda *_: Colorization(), restores_files=True
    ),
    "cs25": Task(
        "block compressed sensing, 25 % of the measurements (seed 0, 32 x 32 blocks)",
        lambda *_: CompressedSensing(0.25, seed=0),
    ),
    "deblur": Task(
        "Gaussian deblurring, blur_sigma px (default 1), rcond 1e-3",
        lambda size, mask, blur_sigma: Deblur(gaussian_kernel(blur_sigma), rcond=1e-3),
        restores_files=True,
    ),
    "deblur-gauss1": Task(
        "Gaussian deblurring, 1 px, rcond 1e-3", lambda *_: Deblur(gaussian_kernel(1.0), rcond=1e-3)
    ),
    "denoise": Task("denoising (A = I)", lambda *_: Denoising(), restores_files=True),
}
TASKS.update({f"{base}-noisy{sy}": _noisy(base, sy) for base in ("sr4", "cs25") for sy in (0.05, 0.1, 0.2)})
TASKS["denoise-noisy0.2"] = _noisy("denoise", 0.2)  # the denoising specialist's task (chapter 13)


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``, or one clear line naming the tasks there are."""
    if name not in TASKS:
        raise DDNMInputError(f"unknown task {name!r}; available: {', '.join(TASKS)}.")
    return TASKS[name]


def from_name(name: str, size: int = 32, mask: torch.Tensor | None = None, blur_sigma: float = 1.0) -> LinearOperator:
    """The operator A of task ``name`` (:data:`TASKS`) for ``size`` x ``size`` images."""
    return get_task(name).build(size, mask, blur_sigma)
