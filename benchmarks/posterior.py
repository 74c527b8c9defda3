"""What DDNM samples, measured: one sample against the mean of K, against an exact posterior sampler's
prediction and the supervised specialist, and how well the samples' spread predicts the error.

    python benchmarks/posterior.py            # -> benchmarks/posterior.md and posterior.json (~30 min, 2 cores)

It also rewrites the "What DDNM samples" section of each diffusion model's card in data/weights
(``evaluate.refresh_posterior_section``; the rest of the card is left as its evaluation wrote it).

For each task, K = 16 DDNM samples of each of N held-out images (``de.posterior_samples``, one batch):
Fashion-MNIST test images for fashion-mnist-32; for emoji-32 the held-out emoji whose base emoji was never
trained on (``emoji.unseen_base``: no sibling in another skin tone or gender). Noise-free y.

* PSNR of one sample (averaged over the K samples) and of the mean of the first K' = 1, 2, 4, 8, 16.
* What an exact posterior sampler would give from the same single-sample error: its sample has twice
  the MMSE, E||x_s - x||^2 = 2 MMSE, and the mean of K has MMSE (1 + 1/K), so
  MSE_K = MSE_1 (1 + 1/K) / 2 per image (+3.01 dB at K -> infinity).
* shared / spread: the part of the error the samples share, ||mean - x||^2 - V / K, over their spread V
  (per-pixel variance, unbiased). Both equal the MMSE for an exact sampler: the ratio is 1. Above 1 the
  samples share a bias, or spread too little.
* calibration (``Samples.calibration``): coverage of |x - mean| <= 2 std against what a calibrated spread gives
  (``posterior.calibrated_coverage``: Student's t, K - 1 degrees of freedom), and the rank correlation
  of std with |x - mean|; the spread's range part (0 for noise-free DDNM).
* The supervised specialist (``restormer-sr4``) where one exists.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
KS = (1, 2, 4, 8, 16)


def problems():
    from ddnm_edu import operators as ops

    return {
        ("fashion-mnist-32", "sr4"): ops.SuperResolution(4),
        ("fashion-mnist-32", "inpaint-box12"): ops.Inpainting(ops.Inpainting.box_mask(32, 12)),
        ("emoji-32", "sr4"): ops.SuperResolution(4),
        ("emoji-32", "colorize"): ops.Colorization(),
    }


def held_out(model: str, n: int) -> torch.Tensor:
    import ddnm_edu as de

    if model.startswith("emoji"):
        from ddnm_edu.tools.emoji import unseen_base

        return de.data.load("emoji", "test")[torch.as_tensor(unseen_base()[:n])]
    return de.data.load("fashion-mnist", "test", n=n)


def measure(model_name: str, task: str, op, n: int, k: int, steps: int, seed: int) -> dict:
    import ddnm_edu as de
    from ddnm_edu.metrics import PSNR_CAP_DB
    from ddnm_edu.tools.evaluate import psnr_capped

    sched = de.NoiseSchedule.linear(1000)
    model = de.load_pretrained(model_name)
    x = held_out(model_name, n)
    y = op.A(x)
    t0 = time.time()
    s = de.posterior_samples(model, sched, op, y, k=k, steps=steps, seed=seed)
    seconds = time.time() - t0
    clipped = s.samples.clamp(-1, 1)
    mse = lambda a: (a - x).pow(2).flatten(1).mean(1)  # noqa: E731  per image
    to_db = lambda m: de.metrics.psnr_from_mse(m, max_db=PSNR_CAP_DB)  # noqa: E731  as psnr_capped
    mse_one = torch.stack([mse(clipped[:, j]) for j in range(k)], 1)  # (N, K)
    row = {
        "model": model_name,
        "task": task,
        "n": n,
        "k": k,
        "steps": steps,
        "seconds": round(seconds, 1),
        "psnr_one": float(torch.stack([psnr_capped(clipped[:, j], x) for j in range(k)], 1).mean()),
        "psnr_mean": {str(kk): float(psnr_capped(clipped[:, :kk].mean(1), x).mean()) for kk in KS},
        "psnr_exact_prediction": {str(kk): float(to_db(mse_one.mean(1) * (1 + 1 / kk) / 2).mean()) for kk in KS},
    }
    spread = clipped.var(1).flatten(1).mean(1)  # V per image
    shared = mse(clipped.mean(1)) - spread / k
    row["shared_over_spread"] = float(shared.mean() / spread.mean())
    cal = de.posterior.Samples(clipped, s.nfe).calibration(x)
    row.update({f"calibration_{key}": round(v, 4) for key, v in cal.items()})
    row["range_spread_max"] = float(s.spread_parts(op)[0].abs().max())
    if model_name == "fashion-mnist-32" and task == "sr4":
        net = de.load_pretrained("restormer-sr4")
        with torch.no_grad():
            row["psnr_specialist"] = float(psnr_capped(net(op.A_pinv(y)).clamp(-1, 1), x).mean())
    print(row, flush=True)
    return row


def write_markdown(report: dict, out: Path) -> str:
    from ddnm_edu.metrics import PSNR_CAP_DB
    from ddnm_edu.tools.evaluate import markdown_table

    info = report["info"]
    lines = [
        "# What DDNM samples: one sample, the mean of K, and the spread",
        "",
        f"`{info['command']}` — {info['n']} held-out images per task (Fashion-MNIST test; emoji without a "
        f"training sibling), K = {info['k']} samples each, {info['steps']} steps, eta 0.85, noise-free y; "
        f"{info['machine']}, {info['minutes']:.1f} min. "
        f"PSNR in dB (mean over images, capped at {PSNR_CAP_DB:.1f} dB).",
        "",
    ]
    head = (
        ["model", "task", "one sample"]
        + [f"mean of {kk}" for kk in KS[1:]]
        + ["exact sampler, mean of 16", "specialist", "shared / spread", "coverage (calibrated)", "rank corr."]
    )
    rows = []
    for r in report["rows"]:
        rows.append(
            [r["model"], r["task"], f"{r['psnr_one']:.2f}"]
            + [f"{r['psnr_mean'][str(kk)]:.2f}" for kk in KS[1:]]
            + [
                f"{r['psnr_exact_prediction'][str(KS[-1])]:.2f}",
                f"{r['psnr_specialist']:.2f}" if "psnr_specialist" in r else "—",
                f"{r['shared_over_spread']:.2f}",
                f"{r['calibration_coverage']:.3f} ({r['calibration_expected']:.3f})",
                f"{r['calibration_spearman']:.2f}",
            ]
        )
    lines += markdown_table(head, rows)
    lines += [
        "",
        "*exact sampler*: what the mean of 16 would score if the samples were exact posterior samples "
        "with the measured single-sample error (MSE_16 = MSE_1 (1 + 1/16) / 2 per image). *shared / spread*: "
        "the error the samples share over their spread; 1 for an exact sampler. *coverage*: pixels with "
        "|x - mean| <= 2 std, over pixels where the samples differ (in brackets: the value for a calibrated "
        "spread, `posterior.calibrated_coverage`, Student's t with K - 1 degrees of freedom). All measures use "
        "the samples clipped to [-1, 1], as PSNR does everywhere in the book. *one sample* averages the "
        "PSNR of each sample; the exact-sampler column starts from each image's mean squared error over its "
        "samples (`psnr_exact_prediction` at K = 1 in the JSON, which is the single-sample PSNR computed that "
        "way). The "
        "spread's range part is at most "
        f"{max(r['range_spread_max'] for r in report['rows']):.1e} (noise-free DDNM: every sample has "
        "A x = y).",
    ]
    text = "\n".join(lines) + "\n"
    (out / "posterior.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    if args.k < max(KS):
        ap.error(f"--k must be at least {max(KS)}")
    t0 = time.time()
    rows = [measure(m, task, op, args.n, args.k, args.steps, args.seed) for (m, task), op in problems().items()]
    info = {
        "command": "python benchmarks/posterior.py"
        + "".join(f" --{a} {getattr(args, a)}" for a in ("n", "k", "steps") if getattr(args, a) != ap.get_default(a)),
        "n": args.n,
        "k": args.k,
        "steps": args.steps,
        "seed": args.seed,
        "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "minutes": (time.time() - t0) / 60,
    }
    report = {"info": info, "rows": rows}
    (args.out / "posterior.json").write_text(json.dumps(report, indent=2) + "\n")
    print(write_markdown(report, args.out))
    if args.out.resolve() == HERE:  # the committed benchmark: quote it in the model cards
        from ddnm_edu.pretrained import WEIGHTS_DIR
        from ddnm_edu.tools.evaluate import refresh_posterior_section

        for name in sorted({r["model"] for r in rows}):
            print("updated", refresh_posterior_section(name, WEIGHTS_DIR, HERE))


if __name__ == "__main__":
    main()
