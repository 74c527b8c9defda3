"""The sampler's own work per step in two versions of the library, paired: what a cache buys.

    git worktree add /tmp/before f1ca093      # the sampler with float caches, chunked noise, checks off
    python benchmarks/sampler_overhead.py /tmp/before .     # writes sampler-overhead.json and .md

The network is replaced by a free function returning a fixed eps, so what is timed is everything the
sampler does around a model call (coefficients, noise, checks, lines 3-5). Each round runs every version
once, in its own process, in alternating order; the report gives each version's median over rounds and
the median of the within-round differences, as a share of one bare UNet call (fashion-mnist-32 in
inference mode, timed in the same rounds). One thread, as the per-step costs are small.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = ("ddim@1", "ddnm@1", "ddnm_plus@1", "ddim@16", "ddnm@16", "ddnm_plus@16")

ONE = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
import ddnm_edu as de
from ddnm_edu import operators as ops
assert de.__file__.startswith(sys.argv[1]), de.__file__
sched, out, steps = de.NoiseSchedule.linear(1000), {}, 20
model = de.load_pretrained("fashion-mnist-32")
for batch in (1, 16):
    x = de.data.load("fashion-mnist", "test", n=batch)
    op = ops.SuperResolution(4)
    y = op.A(x)
    y_noisy = y + 0.1 * torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    free = lambda x_t, t: eps
    def unet():
        with torch.inference_mode():
            for t in range(999, 0, -1000 // steps):
                model(x, torch.full((batch,), t))
    def ddnm_unet():
        de.ddnm(model, sched, op, y, steps=steps)
    runs = {"unet": unet, "ddnm_unet": ddnm_unet,
            "ddim": lambda: de.sample(free, sched, tuple(x.shape), steps=steps, eta=0.85),
            "ddnm": lambda: de.ddnm(free, sched, op, y, steps=steps),
            "ddnm_plus": lambda: de.ddnm_plus(free, sched, op, y_noisy, sigma_y=0.1, steps=steps)}
    for m, f in runs.items():
        f()
        times = []
        for _ in range(7 if m in ("unet", "ddnm_unet") else 30):
            t0 = time.perf_counter(); f(); times.append(time.perf_counter() - t0)
        out[f"{m}@{batch}"] = 1e3 * statistics.median(times) / steps
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path, help="checkout of the version with the caches")
    ap.add_argument("after", type=Path, help="checkout of the version without them")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    roots = {"before": str(args.before.resolve()), "after": str(args.after.resolve())}
    rounds = []
    for r in range(args.rounds):
        got = {}
        for name in ("before", "after") if r % 2 == 0 else ("after", "before"):
            res = subprocess.run([sys.executable, "-c", ONE, roots[name]], capture_output=True, text=True, check=True)
            got[name] = json.loads(res.stdout.strip().splitlines()[-1])
        rounds.append(got)
        print(got, flush=True)
    commits = {
        k: subprocess.run(
            ["git", "-C", v, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        for k, v in roots.items()
    }
    report = {
        "command": "python benchmarks/sampler_overhead.py BEFORE AFTER --rounds " + str(args.rounds),
        "commits": commits,
        "machine": f"{platform.machine()}, 1 thread",
        "rounds": rounds,
    }
    (HERE / "sampler-overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    print(write_markdown(report))


def write_markdown(report: dict) -> str:
    rounds = report["rounds"]

    def med(name, key):
        return statistics.median(r[name][key] for r in rounds)

    lines = [
        "# What the sampler's caches bought: its own work per step, before and after",
        "",
        f"`{report['command']}` (before = `{report['commits']['before']}`, after = "
        f"`{report['commits']['after']}`; {report['machine']}; {len(rounds)} rounds, each version in "
        "its own process, alternating). The network is a free function returning a fixed eps; "
        "the UNet column is one bare fashion-mnist-32 call in inference mode, timed in the same "
        "process. Milliseconds per step, medians over rounds; the last column is the paired "
        "median of (after - before) as a share of a UNet call.",
        "",
        "| case | before (ms) | after (ms) | UNet call (ms) | after - before, share of a UNet call |",
        "|---|---|---|---|---|",
    ]
    for case in CASES:
        batch = case.split("@")[1]
        unet = med("after", f"unet@{batch}")
        diff = statistics.median(r["after"][case] - r["before"][case] for r in rounds)
        lines.append(
            f"| {case} | {med('before', case):.3f} | {med('after', case):.3f} | {unet:.2f} | "
            f"{100 * diff / unet:+.2f} % |"
        )
    lines += [
        "",
        "End to end with the real network (DDNM with fashion-mnist-32 against the same number of bare "
        "UNet calls, 20 steps, one thread): median over rounds of the ratio.",
        "",
        "| batch | before | after |",
        "|---|---|---|",
    ]
    for batch in (1, 16):
        ratio = {
            v: statistics.median(r[v][f"ddnm_unet@{batch}"] / r[v][f"unet@{batch}"] for r in rounds)
            for v in ("before", "after")
        }
        lines.append(f"| {batch} | {ratio['before']:.3f} | {ratio['after']:.3f} |")
    text = "\n".join(lines) + "\n"
    (HERE / "sampler-overhead.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
