"""Is a training run better than the shipped model? Held-out numbers, side by side, same seeds.

    python benchmarks/prior_check.py --name emoji-32 --run /work/runs/emoji-broad [--n 32 --steps 50]

For the shipped weights and the run's EMA weights (``ema.pt``): the held-out denoising loss per
timestep bucket (every held-out image; per art style for emoji) and the restoration table of
``evaluate.restoration_table`` on the first ``--n`` held-out images of each style (DDNM at ``--steps``
steps, the mean of 4 samples on the box), with ``evaluate.targets``. Writes
``benchmarks/prior-check-<name>.md`` and ``.json``. Export a run only when it wins here.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ddnm_edu import data, evaluate
from ddnm_edu.pretrained import WEIGHTS_DIR, load_pretrained, registry
from ddnm_edu.schedule import NoiseSchedule

OUT = Path(__file__).resolve().parent


def measure(name: str, weights: Path | None, n: int, steps: int, seed: int = 0, n_loss: int | None = None) -> dict:
    model = load_pretrained(name, "cpu", weights)
    sched = NoiseSchedule.linear(1000)
    styles = data.EMOJI_STYLES if name.startswith("emoji") else (None,)
    out: dict = {"loss": {}, "restoration": {}}
    for style in styles:
        ds = "emoji" if style else "fashion-mnist"
        x = data.load(ds, "test", style=style)
        key = style or "fashion-mnist"
        out["loss"][key] = evaluate.bucket_losses(model, sched, x[:n_loss], seed)
        out["restoration"][key] = evaluate.restoration_table(model, sched, x[:n], name, steps, seed,
                                                             n_mean=4 if style else 0)
    out["targets"] = evaluate.targets(name, out["restoration"] if styles[0] else out["restoration"]["fashion-mnist"])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, choices=sorted(registry()))
    ap.add_argument("--run", type=Path, required=True, help="a training run folder (its ema.pt is measured)")
    ap.add_argument("--n", type=int, default=32, help="held-out images per style for the restoration table")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--n-loss", type=int, default=None, help="held-out images for the loss (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    ck = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=True)
    shipped = registry()[args.name]
    t0 = time.time()
    res = {"shipped": measure(args.name, None, args.n, args.steps, n_loss=args.n_loss),
           "run": measure(args.name, args.run / "ema.pt", args.n, args.steps, n_loss=args.n_loss)}
    info = {"name": args.name, "run": str(args.run), "run_steps": int(ck["step"]),
            "run_init_steps": int(ck.get("init_steps", 0)), "shipped_steps": shipped["steps"], "n": args.n,
            "steps": args.steps, "seconds": round(time.time() - t0), "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}
    (args.out / f"prior-check-{args.name}.json").write_text(json.dumps({"info": info, **res}, indent=2) + "\n")
    lines = [f"# {args.name}: shipped weights vs the run {args.run.name}", "",
             f"`python benchmarks/prior_check.py --name {args.name} --run {args.run} --n {args.n} --steps {args.steps}` "
             f"({info['seconds'] / 60:.1f} min, torch threads: {info['threads']}). Shipped: {shipped['steps']:,} steps; run: "
             f"{info['run_steps']:,} steps on top of {info['run_init_steps'] or 'the shipped weights'}.", "",
             f"## Held-out denoising loss ({args.n_loss or 'all'} held-out images per set; lower is better)", "",
             "| set | t | shipped | run |", "|---|---|---|---|"]
    for key, buckets in res["shipped"]["loss"].items():
        for b, v in buckets.items():
            lines.append(f"| {key} | {b} | {v:.4f} | {res['run']['loss'][key][b]:.4f} |")
    lines += ["", f"## Restoration, first {args.n} held-out images per set, DDNM {args.steps} steps (PSNR dB, mean)",
              "", "| set | task | method | shipped | run |", "|---|---|---|---|---|"]
    for key, table in res["shipped"]["restoration"].items():
        for task, methods in table.items():
            for m, v in methods.items():
                if m.startswith("_") or not m.startswith("DDNM"):
                    continue
                r = res["run"]["restoration"][key][task][m]
                base = methods[methods["_baseline"]]["psnr"][0]
                lines.append(f"| {key} | {task} | {m} (baseline {methods['_baseline']} {base:.2f}) | "
                             f"{v['psnr'][0]:.2f} | {r['psnr'][0]:.2f} |")
    lines += ["", "## Targets (`evaluate.targets`, at these settings)", "", "| set | target | shipped | run |",
              "|---|---|---|---|"]
    for a, b in zip(res["shipped"]["targets"], res["run"]["targets"]):
        lines.append(f"| {a['style']} | {a['target']} | {'yes' if a['met'] else 'no'} ({a['value']:.2f}) | "
                     f"{'yes' if b['met'] else 'no'} ({b['value']:.2f}) |")
    (args.out / f"prior-check-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
