"""One switch for the book's run sizes: ``DDNM_EDU_SCALE=cpu`` (default) or ``full``.

The chapters read their step counts and batch sizes from :func:`settings`, so the same notebook
runs in about a minute on a 2-core laptop CPU and bigger on a GPU (``DDNM_EDU_SCALE=full``).
The device is the best one available (CUDA, then Apple MPS, then CPU) unless ``DDNM_EDU_DEVICE``
names one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import DDNMInputError


@dataclass(frozen=True)
class Settings:
    scale: str  # "cpu" or "full"
    device: torch.device
    steps: int  # sampling steps for restorations and samples
    n_images: int  # images per experiment
    n_seeds: int  # samples per input when showing diversity
    train_steps: int  # steps of the live toy training run (chapter 3)


def best_device() -> torch.device:
    name = os.environ.get("DDNM_EDU_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model, default: torch.device | str = "cpu") -> torch.device:
    """The device of a network's parameters (``default`` for a plain function or a model without any)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device(default)


def settings() -> Settings:
    scale = os.environ.get("DDNM_EDU_SCALE", "cpu").lower()
    if scale == "cpu":
        return Settings("cpu", best_device(), steps=25, n_images=8, n_seeds=4, train_steps=3000)
    if scale == "full":
        return Settings("full", best_device(), steps=100, n_images=64, n_seeds=8, train_steps=6000)
    raise DDNMInputError(f"DDNM_EDU_SCALE must be 'cpu' or 'full', got {scale!r}.")
