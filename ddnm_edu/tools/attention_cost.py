"""What attention costs: one forward pass of MDTA and of spatial self-attention (``ddnm_edu.restormer``),
timed and with its peak tensor memory from the PyTorch profiler (chapter 13 measures it live).

Measurement tooling, not part of the model: the profiler's internals (``kineto_results``) and a
silenced file descriptor 2 live here, so ``restormer.py`` reads as the model alone.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..restormer import MDTA, SpatialSelfAttention


@dataclass
class CostRow:
    size: int  # image side (pixels)
    pixels: int  # H * W
    mdta_ms: float
    spatial_ms: float
    mdta_peak_mb: float  # peak of tensor memory allocated during one forward pass
    spatial_peak_mb: float


@contextmanager
def _quiet_stderr():
    """Silence the profiler's C++ start/stop lines, which go straight to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _peak_bytes(fn) -> float:
    """Peak bytes of CPU tensors allocated and alive during ``fn()``: the running sum of the allocation
    (+) and free (-) events that the PyTorch profiler records with ``profile_memory=True``, in time order."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return float(peak)


def attention_cost(sizes: list[int], dim: int = 32, heads: int = 1, repeats: int = 5, seed: int = 0) -> list[CostRow]:
    """Measure one forward pass of MDTA and of spatial self-attention on a (1, dim, s, s) input for each
    side s in ``sizes``: wall time (ms, on one CPU thread, the fastest of ``repeats`` runs -- the one least
    disturbed by other work on the machine) and peak tensor memory (MB, from the profiler's allocation events)."""
    torch.manual_seed(seed)
    mdta, spatial = MDTA(dim, heads).eval(), SpatialSelfAttention(dim, heads).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no waiting on a busy core's sibling thread, the same on every machine
    try:
        return _cost_rows(sizes, dim, mdta, spatial, repeats)
    finally:
        torch.set_num_threads(threads)


def _cost_rows(sizes, dim, mdta, spatial, repeats) -> list[CostRow]:
    rows = []
    with torch.no_grad():
        for s in sizes:
            x = torch.randn(1, dim, s, s)
            res = {}
            for name, mod in (("mdta", mdta), ("spatial", spatial)):
                mod(x)  # warm-up
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    mod(x)
                    times.append(time.perf_counter() - t0)
                res[name] = (1e3 * min(times), _peak_bytes(lambda: mod(x)) / 2**20)
            rows.append(CostRow(s, s * s, res["mdta"][0], res["spatial"][0], res["mdta"][1], res["spatial"][1]))
    return rows
