"""What the samplers do between two UNet calls, timed inside real runs (not with a free model).

    python benchmarks/between_calls.py            # writes benchmarks/between-calls.md

The model is the shipped fashion-mnist-32 UNet wrapped so that it stamps the clock when each call
starts and ends; the gap between two calls is the sampler's own work on that step (noise draw,
x0_t, the projection, the step formula, the checks), measured where it really runs: right after a
UNet forward pass, on caches the network has just filled. ``speed.md``'s own-work figures use a free
function instead of the network, which is the same work on warm caches. Bare calls (the loop of
``speed.py``'s ``unet``) give the floor. 4x SR on Fashion-MNIST 32x32, 10 steps, medians of 40 runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

import ddnm_edu as de
from ddnm_edu import operators as ops

HERE = Path(__file__).resolve().parent


class Stamped(torch.nn.Module):
    """The model, recording perf_counter() before and after every call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.stamps = model, []

    def forward(self, x, t):
        self.stamps.append(time.perf_counter())
        out = self.model(x, t)
        self.stamps.append(time.perf_counter())
        return out

    @property
    def config(self):
        return self.model.config


def measure(batch: int, runs: int = 40, steps: int = 10) -> dict:
    sched = de.NoiseSchedule.linear(1000)
    model = Stamped(de.load_pretrained("fashion-mnist-32", "cpu"))
    x = de.data.load("fashion-mnist", "test", n=batch)
    op = ops.SuperResolution(4)
    y, y_noisy = op.A(x), op.measure(x, 0.1, seed=0)

    def bare():
        with torch.inference_mode():
            for t in sched.timesteps(steps):
                model(x, torch.full((batch,), t, dtype=torch.long))

    methods = {
        "unet": bare,
        "ddim": lambda: de.sample(model, sched, tuple(x.shape), steps=steps, eta=0.85, seed=0),
        "ddnm": lambda: de.ddnm(model, sched, op, y, steps=steps, seed=0),
        "ddnm_plus": lambda: de.ddnm_plus(model, sched, op, y_noisy, sigma_y=0.1, steps=steps, seed=0),
    }
    out = {}
    for name, f in methods.items():
        f()  # warm-up
        gaps, calls = [], []
        for _ in range(runs):
            model.stamps = []
            f()
            s = model.stamps
            calls.append(statistics.mean(s[i + 1] - s[i] for i in range(0, len(s), 2)))
            gaps.append(statistics.mean(s[i + 1] - s[i] for i in range(1, len(s) - 1, 2)))
        out[name] = {"call_ms": 1e3 * statistics.median(calls), "between_ms": 1e3 * statistics.median(gaps)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--out", type=Path, default=HERE / "between-calls.md")
    args = ap.parse_args()
    lines = [
        "# What the samplers do between two UNet calls",
        "",
        f"`python benchmarks/between_calls.py` (see its docstring); {platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}. Milliseconds per step, medians of 40 runs.",
        "",
        "| batch | method | UNet call (ms) | between calls (ms) | between calls, share of a call |",
        "|---|---|---|---|---|",
    ]
    for b in args.batch or [1, 16]:
        for name, r in measure(b).items():
            share = 100 * r["between_ms"] / r["call_ms"]
            lines.append(f"| {b} | {name} | {r['call_ms']:.2f} | {r['between_ms']:.3f} | {share:.2f} % |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
