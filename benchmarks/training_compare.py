"""Which training objective buys more held-out quality per CPU-minute? Runs compared by held-out numbers.

    python benchmarks/training_compare.py --run mse=/work/runs/fm-mse --run min-snr=/work/runs/fm-min-snr

Each run folder holds ``checkpoint.pt`` and (optionally) ``snap_*.pt`` copies taken while it trained.
For every checkpoint, the EMA weights are scored on held-out Fashion-MNIST test images that training
never sees: the plain eps-MSE averaged over ten timestep buckets (the same unweighted yardstick for
every objective: a weighted training loss is not comparable across weightings) and DDNM PSNR on 4x SR
and a centred 12x12 box (capped PSNR, as everywhere in the book). The shipped weights the runs started
from are scored as step 0. Writes ``benchmarks/training.md``, ``.csv`` and ``.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import torch

from ddnm_edu.tools.evaluate import markdown_table

HERE = Path(__file__).resolve().parent


def score(sd: dict, unet_cfg: dict, n: int, steps: int, seed: int = 0) -> dict:
    import ddnm_edu as de
    from ddnm_edu import operators as ops
    from ddnm_edu.tools.evaluate import psnr_capped as _psnr, bucket_losses
    from ddnm_edu.unet import UNet, UNetConfig

    model = UNet(UNetConfig.from_dict(unet_cfg))
    model.load_state_dict(sd)
    model = model.eval().requires_grad_(False)
    sched = de.NoiseSchedule.linear(1000)
    x_all = de.data.load("fashion-mnist", "test")
    with torch.no_grad():
        loss = bucket_losses(model, sched, x_all[:256], seed=seed)
    x = x_all[:n]
    out = {"heldout_eps_mse": round(sum(loss.values()) / len(loss), 5)}
    for task, op in (("sr4", ops.SuperResolution(4)), ("box12", ops.Inpainting(ops.Inpainting.box_mask(32, 12)))):
        xh = de.ddnm(model, sched, op, op.A(x), steps=steps, seed=seed)
        out[f"psnr_{task}"] = round(float(_psnr(xh, x).mean()), 3)
    return out


def checkpoints(run: Path) -> list[tuple[int, float, dict, dict]]:
    """(step, wall seconds, EMA state dict, unet config) of every distinct checkpoint in a run folder."""
    seen, out = set(), []
    for f in sorted(run.glob("snap_*.pt")) + [run / "checkpoint.pt"]:
        if not f.exists():
            continue
        ck = torch.load(f, map_location="cpu", weights_only=True)
        if int(ck["step"]) in seen:
            continue
        seen.add(int(ck["step"]))
        out.append((int(ck["step"]), float(ck["wall_seconds"]), ck["ema"], ck["unet"]))
    return sorted(out, key=lambda r: r[0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="label=run_folder")
    ap.add_argument("--base", type=Path, default=Path("data/weights/fashion-mnist-32.pt"))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--every", type=int, default=1, help="score every k-th checkpoint (plus the last)")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows, meta = [], {}
    from ddnm_edu.pretrained import load_state_dict_checked

    base_sd = load_state_dict_checked(args.base)
    base_score = None  # the shipped weights, step 0 of every run: scored once
    for spec in args.run:
        label, folder = spec.split("=", 1)
        run = Path(folder)
        meta[label] = json.loads((run / "run.json").read_text())
        cks = checkpoints(run)
        keep = sorted(set(range(0, len(cks), args.every)) | {len(cks) - 1})  # every k-th, and the last
        picked = [cks[k] for k in keep]
        if base_score is None:
            base_score = score(base_sd, cks[0][3], args.n, args.steps)
        base = {"run": label, "step": 0, "wall_min": 0.0, **base_score}
        rows.append(base)
        print(base, flush=True)
        for step, wall, sd, cfg in picked:
            r = {"run": label, "step": step, "wall_min": round(wall / 60, 1), **score(sd, cfg, args.n, args.steps)}
            rows.append(r)
            print(r, flush=True)
    with open(HERE / "training.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(12, 3.2))
    for label in meta:
        rs = [r for r in rows if r["run"] == label]
        for ax, key in zip(axs, ("heldout_eps_mse", "psnr_sr4", "psnr_box12")):
            ax.plot([r["step"] for r in rs], [r[key] for r in rs], "o-", label=label)
            ax.set_title(key)
            ax.set_xlabel("fine-tuning step")
    axs[0].legend()
    fig.tight_layout()
    fig.savefig(HERE / "training.png", dpi=100)
    m0 = next(iter(meta.values()))
    lines = [
        "# Training objectives compared on held-out data",
        "",
        f"`python benchmarks/training_compare.py {' '.join('--run ' + s for s in args.run)}` — "
        f"{args.n} held-out Fashion-MNIST test images for DDNM (4x SR, 12x12 box; {args.steps} steps, seed 0, "
        f"capped PSNR), 256 for the held-out eps-MSE (unweighted, 10 timestep buckets). Scoring took "
        f"{(time.time() - t0) / 60:.1f} min on {platform.processor() or platform.machine()}.",
        "",
        f"Runs: each continues the shipped `fashion-mnist-32` weights ({args.base}) with a fresh optimiser, "
        f"batch {m0.get('batch')}, lr {m0.get('lr')}, EMA {m0.get('ema')}, amp {m0.get('amp')}, "
        f"{m0.get('hardware')}; they ran side by side, one thread each, so their wall times are comparable.",
        "",
        *markdown_table(
            ["run", "loss", "step", "wall (min)", "held-out eps-MSE", "DDNM 4x SR (dB)", "DDNM box (dB)"],
            [
                [
                    r["run"],
                    meta[r["run"]].get("loss"),
                    r["step"],
                    r["wall_min"],
                    f"{r['heldout_eps_mse']:.5f}",
                    f"{r['psnr_sr4']:.2f}",
                    f"{r['psnr_box12']:.2f}",
                ]
                for r in rows
            ],
        ),
    ]
    lines += ["", "![held-out curves](training.png)", ""]
    (HERE / "training.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
