"""Random streams: one seed, many independent generators, and the draw every sampler uses.

A restoration draws noise for several purposes -- the measurement noise n of y = A x + sigma_y n,
the sampler's x_T and fresh z, one stream per image of a folder, per sample of a posterior, per
window of a large image. They must never share numbers. Adding integers to a seed does not ensure
that (seed + 1 for "the next image" is also seed + 1 for "the next sample"), so every child stream
comes from :func:`spawn`: NumPy's ``SeedSequence(seed, spawn_key=key)``, the standard derivation of
independent streams from one seed (keys are hashed, so ``(0, "window", 1)`` and ``(1, "window",
0)`` are unrelated). Generators are CPU ``torch.Generator`` s, as diffusers' pipelines take them:
the same seed gives the same numbers on every device. The samplers draw from them with
:func:`ddnm_edu.sampling.randn`.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import torch

from .errors import DDNMInputError, check_int_range


def spawn(seed: int, *key: int | str) -> torch.Generator:
    """The child stream ``key`` of ``seed``, e.g. ``spawn(0, "measure")``, ``spawn(0, "image", 3)``.

    Different keys give independent streams; the same (seed, key) always gives the same numbers.
    Strings in the key are hashed to integers (CRC-32).
    """
    seed = check_int_range(seed, "seed", 0, hint=" Use a whole number >= 0.")
    words = tuple(zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key)
    if min(words, default=0) < 0:
        raise DDNMInputError(f"stream keys must be strings or whole numbers >= 0, got {key}.")
    state = np.random.SeedSequence(seed, spawn_key=words).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def spawn_many(seed: int, n: int, *key: int | str) -> list[torch.Generator]:
    """``n`` independent streams ``spawn(seed, *key, i)`` for i = 0..n-1 (one per image or sample)."""
    return [spawn(seed, *key, i) for i in range(n)]


def image_streams(seed: int, ids: Sequence[int], *key: int | str) -> list[torch.Generator]:
    """One stream per image, ``spawn(seed, "image", i, *key)`` for each id i: a batch's
    ``generator=`` list (e.g. ``key = ("window", 3)`` for window 3 of each image)."""
    return [spawn(seed, "image", i, *key) for i in ids]


def stream_ids(ids: Sequence[int] | None, n: int) -> list[int]:
    """The indices that key the streams of ``n`` images (``spawn(seed, "image", id, ...)``): 0..n-1 by
    default, or the images' indices in a larger set (a folder, so results do not depend on batching)."""
    ids = list(range(n)) if ids is None else list(ids)
    if len(ids) != n:
        raise DDNMInputError(f"image_ids has {len(ids)} entries for {n} images; give one per image.")
    if len(set(ids)) != n:
        raise DDNMInputError(f"image_ids {ids} repeats an id; two images would share their noise. Give each its own.")
    return ids


def generators(
    generator: torch.Generator | list[torch.Generator] | None, seed: int | None, batch: int
) -> torch.Generator | list[torch.Generator]:
    """What a sampler draws from: the generator given (one, or one per image of a batch of ``batch``),
    or ``torch.Generator().manual_seed(seed)`` (seed 0 when neither is given; not both)."""
    if generator is None:
        return torch.Generator().manual_seed(check_int_range(seed or 0, "seed", 0))
    if seed is not None:
        raise DDNMInputError("give seed= or generator=, not both: the generator decides the noise.")
    if isinstance(generator, torch.Generator):
        return generator
    generator = list(generator)
    if len(generator) != batch or not all(isinstance(g, torch.Generator) for g in generator):
        raise DDNMInputError(
            f"generator must be one torch.Generator or a list of {batch} (one per "
            f"image); got {len(generator)} items. de.rng.spawn_many makes them."
        )
    return generator
