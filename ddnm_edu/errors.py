"""One error type for bad input, and the small guards that raise it.

Every message names the problem *and* the fix, so a reader who passes a wrong
shape, a NaN or a negative noise level is told what to change instead of
getting a silently wrong image.
"""

from __future__ import annotations

import math

import torch


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside ddnm_edu and torch: the reader's own line.

    A fixed ``stacklevel`` is wrong behind decorators such as ``torch.no_grad`` (the warning then
    names ``torch/utils/_contextlib.py``).
    """
    import os
    import sys
    import warnings

    skip = (os.path.dirname(__file__) + os.sep, os.path.dirname(torch.__file__) + os.sep)
    level, frame = 2, sys._getframe(1)  # stacklevel 2 = the caller of warn_user
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class DDNMInputError(ValueError):
    """Raised for input that would otherwise give a silently wrong result."""


def check_image_batch(x: torch.Tensor, name: str = "x", channels: int | None = None) -> None:
    """Check that ``x`` is a finite ``(B, C, H, W)`` tensor (with ``channels`` channels): where images
    enter the library (measurements, samplers, metrics)."""
    check_image_shape(x, name, channels)
    check_finite(x, name)


def check_image_shape(x: torch.Tensor, name: str = "x", channels: int | None = None) -> None:
    """Check that ``x`` is a ``(B, C, H, W)`` tensor (with ``channels`` channels). The operators' maps
    check only this (no pass over the values): inside a sampler they run at every step on tensors
    that the sampler's entry and the model check already (see ``benchmarks/speed.md``)."""
    if not isinstance(x, torch.Tensor):
        raise DDNMInputError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}; "
            f"convert it with torch.as_tensor(...)."
        )
    if x.ndim != 4:
        raise DDNMInputError(
            f"{name} must have shape (B, C, H, W), got shape {tuple(x.shape)}; "
            f"add a batch dimension with {name}[None] or reshape it."
        )
    if channels is not None and x.shape[1] != channels:
        raise DDNMInputError(
            f"{name} has {x.shape[1]} channel(s) but {channels} are needed here; "
            f"pass a {channels}-channel image (B, {channels}, H, W)."
        )


def check_finite(x: torch.Tensor, name: str) -> None:
    """Reject NaN / inf values (they would spread through every later step)."""
    if not torch.isfinite(x).all():
        n_bad = int((~torch.isfinite(x)).sum())
        raise DDNMInputError(
            f"{name} contains {n_bad} NaN or infinite value(s); "
            f"clean the input (e.g. torch.nan_to_num) before restoring it."
        )


def check_nonnegative(value: float, name: str, meaning: str, fix: str) -> float:
    """Check that a real setting is a finite number >= 0 and return it as a float.

    ``meaning`` says what the setting is (shown in brackets), ``fix`` how to correct it.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v) or v < 0:
        raise DDNMInputError(f"{name} must be a finite number >= 0 ({meaning}), got {value!r}; {fix}.")
    return v


def check_sigma_y(sigma_y: float) -> float:
    """A noise standard deviation must be a finite number >= 0."""
    return check_nonnegative(
        sigma_y, "sigma_y", "the std of the noise in y", "use sigma_y=0 for noise-free measurements"
    )


def check_int_range(value: int, name: str, low: int, high: int | None = None, hint: str = "") -> int:
    """Check ``low <= value (<= high)`` for an integer setting."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int,))
        and not (isinstance(value, float) and float(value).is_integer())
    ):
        raise DDNMInputError(f"{name} must be an integer, got {value!r}.{hint}")
    v = int(value)
    if v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"between {low} and {high}"
        raise DDNMInputError(f"{name} must be {rng}, got {v}.{hint}")
    return v


def check_eps(eps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The model's noise prediction in x's dtype, refused if its shape is wrong or it is not finite."""
    if eps.shape != x.shape:
        raise DDNMInputError(
            f"the model returned shape {tuple(eps.shape)} for x_t of shape "
            f"{tuple(x.shape)}; is it a model for these images?"
        )
    if not bool(torch.isfinite(eps).all()):
        raise DDNMInputError(
            "the model returned NaN or infinite noise predictions: check its weights "
            "and that x_t is in its expected range."
        )
    return eps.to(x.dtype)


def check_channels(model, channels: int) -> None:
    """Refuse a model whose config says it works on another number of channels."""
    ch = getattr(getattr(model, "config", None), "in_channels", None)
    if ch is not None and channels != ch:
        raise DDNMInputError(
            f"the model works on {ch}-channel images but this task produces "
            f"{channels}-channel images; use a {ch}-channel model or task (e.g. "
            "colorization needs an RGB model)."
        )
