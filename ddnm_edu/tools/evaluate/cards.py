"""Model cards: the evidence of quality for the shipped diffusion models.

    python -m ddnm_edu.tools.evaluate models                 # both models, the full card numbers
    python -m ddnm_edu.tools.evaluate models --name emoji-32 --n 32 --steps 20   # a quick look

For each model: unconditional DDIM samples (a grid), the held-out denoising loss by timestep
bucket next to the training loss, for emoji the nearest training image of some samples, and DDNM
on the held-out set next to A^dagger y and a classical method (bicubic for SR, biharmonic
inpainting). Results go to ``data/weights/<name>.md`` (the model card), ``<name>-eval.json`` and
PNG figures beside them.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from ... import baselines, data, metrics
from ... import operators as ops
from ...pretrained import _record, load_pretrained
from ...sampling import ddnm, sample
from ...rng import image_streams
from ...schedule import NoiseSchedule
from ...book_scale import best_device, model_device
from ..images import save_grid
from .common import BENCH_DIR, markdown_table, psnr_capped, score_cells, scores, stats

BUCKETS = ((0, 100), (100, 300), (300, 600), (600, 1000))


@torch.no_grad()
def bucket_losses(model, sched: NoiseSchedule, x0: torch.Tensor, seed: int = 0, batch: int = 250) -> dict:
    """Mean ||eps - eps_theta(x_t, t)||^2 per timestep bucket, t uniform in the bucket."""
    g = torch.Generator().manual_seed(seed)
    dev = model_device(model, x0.device)
    out = {}
    for lo, hi in BUCKETS:
        total, n = 0.0, 0
        for i in range(0, len(x0), batch):
            xb = x0[i : i + batch]
            t = torch.randint(lo, hi, (len(xb),), generator=g)
            eps = torch.randn(xb.shape, generator=g)
            pred = model(sched.add_noise(xb, eps, t).to(dev), t.to(dev)).to(xb.device)
            total += float(((pred - eps) ** 2).mean(dim=(1, 2, 3)).sum())
            n += len(xb)
        out[f"{lo}-{hi - 1}"] = total / n
    return out


def tasks_for(name: str, size: int = 32) -> dict:
    """task name -> operator, the tasks of a model card (colorization for the RGB emoji model)."""
    names = ["sr4", "inpaint-random50", "inpaint-box12"] + (["colorize"] if name.startswith("emoji") else [])
    return {task: ops.from_name(task, size) for task in names}


def restoration_table(
    model, sched, x: torch.Tensor, name: str, steps: int, seed: int, batch: int = 64, n_mean: int = 0
) -> dict:
    """DDNM next to A^dagger y and the classical method on every task of :func:`tasks_for`.

    ``n_mean`` > 1 adds the mean of that many DDNM samples (different seeds) on the 12x12 box, where
    one sample is a guess and the mean estimates the posterior mean. Each method also gets
    ``beats_baseline``: the fraction of images on which its PSNR exceeds the baseline's (the
    classical method where there is one, else A^dagger y -- for colorization, the gray image).
    """
    res = {}
    for task, op in tasks_for(name).items():
        y = op.A(x)
        outs = {"A^dagger y": op.A_pinv(y)}
        base = baselines.classical(op, y)
        if base is not None:
            outs[base[0]] = base[1]
        baseline = base[0] if base is not None else "A^dagger y"

        def run(k: int) -> torch.Tensor:  # sample k of every image: image j draws from its own stream
            return torch.cat(
                [
                    ddnm(
                        model,
                        sched,
                        op,
                        y[i : i + batch],
                        steps=steps,
                        eta=0.85,
                        generator=image_streams(seed, range(i, min(i + batch, len(x))), "sample", k),
                    )
                    for i in range(0, len(x), batch)
                ]
            )

        t0 = time.time()
        outs["DDNM"] = run(0)
        secs = time.time() - t0
        if n_mean > 1 and task == "inpaint-box12":
            outs[f"DDNM mean of {n_mean}"] = torch.stack([outs["DDNM"]] + [run(k) for k in range(1, n_mean)]).mean(0)
        psnrs = {m: psnr_capped(o, x) for m, o in outs.items()}
        res[task] = {
            m: {**scores(op, o, x, y), "beats_baseline": float((psnrs[m] > psnrs[baseline]).double().mean())}
            for m, o in outs.items()
        }
        res[task]["_ddnm_seconds"] = secs
        res[task]["_baseline"] = baseline
        print(
            f"  {task}: "
            + ", ".join(f"{m} {v['psnr'][0]:.2f} dB" for m, v in res[task].items() if not m.startswith("_")),
            flush=True,
        )
    return res


def targets(name: str, restoration: dict) -> list[dict]:
    """The quality targets the shipped models are trained towards, checked on a restoration table.

    fashion-mnist-32 (100 steps, 256 held-out images): DDNM 4x SR >= 21.3 dB, 12x12 box >= 27.0 dB.
    emoji-32, on every held-out set (each style, and ``noto-unseen`` in ``benchmarks/prior_check.py``): DDNM
    ahead of bicubic on 4x SR and of biharmonic on random-50 % inpainting; the mean of 4 DDNM samples ahead of
    biharmonic on the 12x12 box; colorization ahead of the
    gray image on the mean and on most images. ``restoration`` is one table (fashion) or
    ``{style: table}`` (emoji).
    """
    rows = []
    if not name.startswith("emoji"):
        for task, goal in (("sr4", 21.3), ("inpaint-box12", 27.0)):
            v = restoration[task]["DDNM"]["psnr"][0]
            rows.append(
                {"style": "-", "target": f"{task}: DDNM >= {goal} dB", "value": v, "versus": goal, "met": v >= goal}
            )
        return rows
    for style, table in restoration.items():
        for task, method in (
            ("sr4", "DDNM"),
            ("inpaint-random50", "DDNM"),
            ("inpaint-box12", "DDNM mean of 4"),
            ("colorize", "DDNM"),
        ):
            if method not in table.get(task, {}):
                continue
            r, b = table[task][method], table[task][table[task]["_baseline"]]
            met = r["psnr"][0] > b["psnr"][0]
            label = f"{task}: {method} > {table[task]['_baseline']}"
            if task == "colorize":
                label += " (mean and most images)"
                met = met and r["beats_baseline"] > 0.5
            rows.append(
                {
                    "style": style,
                    "target": label,
                    "value": r["psnr"][0],
                    "versus": b["psnr"][0],
                    "wins": r["beats_baseline"],
                    "met": met,
                }
            )
    return rows


@torch.no_grad()
def nearest_neighbours(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> dict:
    """L2 distance of each sample to its nearest training image, vs the same for held-out images."""

    def nn(q):
        d = torch.cdist(q.flatten(1), train.flatten(1))
        v, i = d.min(1)
        return v, i

    ds, idx = nn(samples)
    dt, _ = nn(test)
    return {"sample_nn_dist": ds, "sample_nn_idx": idx, "test_nn_dist": dt}


def evaluate_model(
    name: str,
    n: int | None,
    steps: int,
    seed: int,
    out: Path,
    n_samples: int = 64,
    sample_steps: int = 100,
    n_loss: int | None = None,
    sample_eta: float = 1.0,
    weights: Path | None = None,
    n_mean: int = 4,
) -> dict:
    """All model-card numbers for ``name``; ``n``/``n_samples``/``n_loss`` shrink it for quick looks.

    Samples use stochastic DDIM (``sample_eta=1``, DDPM-like) with x0_t clipped: with these tiny models
    deterministic DDIM (eta = 0) gives washed-out, grayish images (chapter 4 shows both).
    ``weights`` measures another state dict (a training run's ``ema.pt``) instead of the shipped file.
    Emoji are measured on each held-out art style (``n`` images of each)."""
    torch.manual_seed(seed)
    rec = dict(_record(name))
    model = load_pretrained(name, best_device(), weights)  # CUDA / MPS when there is one (DDNM_EDU_DEVICE overrides)
    if weights is not None:
        rec.update(file=str(weights), sha256=data.sha256(Path(weights)), status=f"not shipped: {weights}")
    sched = NoiseSchedule.linear(1000)
    dataset = "emoji" if name.startswith("emoji") else "fashion-mnist"
    test = data.load(dataset, "test")
    x = test[:n] if n else test[: (256 if dataset == "fashion-mnist" else len(test))]
    print(f"{name}: {len(x)} held-out images, DDNM {steps} steps", flush=True)
    result: dict = {
        "model": name,
        "n": n,
        "n_images": len(x),
        "steps": steps,
        "seed": seed,
        "eta": 0.85,
        "sample_steps": sample_steps,
        "sample_eta": sample_eta,
        "n_samples": n_samples,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    t0 = time.time()
    samples = sample(
        model, sched, (n_samples, rec["unet"]["in_channels"], 32, 32), steps=sample_steps, eta=sample_eta, seed=seed
    ).cpu()
    save_grid(samples, out / f"{name}-samples.png")
    result["samples_seconds"] = time.time() - t0
    if dataset == "emoji":  # the styles it was trained on (the record says; default: all of train.npz)
        train = data.load("emoji", "train", style=rec.get("train_style"))
    else:
        imgs, _ = data.fashion_mnist_raw("train") if data.FASHION_DIR.exists() else (None, None)
        train = data.to_unit(imgs[: len(test)]) if imgs is not None else None
    n_loss = n_loss or len(test)
    result["loss_images"] = n_loss
    result["loss_test"] = bucket_losses(model, sched, test[:n_loss], seed)
    if train is not None:
        result["loss_train"] = bucket_losses(model, sched, train[:n_loss], seed)
    if dataset == "emoji":
        nnr = nearest_neighbours(samples[:16], train, test)
        pairs = torch.stack([samples[:16], train[nnr["sample_nn_idx"]]], 1).flatten(0, 1)
        save_grid(pairs, out / f"{name}-nearest.png", ncol=8)
        result["nearest"] = {
            "sample_to_train_L2": stats(nnr["sample_nn_dist"]),
            "test_to_train_L2": stats(nnr["test_nn_dist"]),
        }
        result["restoration"], result["n_images"] = {}, {}
        for style in data.EMOJI_STYLES:
            xs = data.load("emoji", "test", style=style, n=n)
            print(f" style {style}: {len(xs)} images", flush=True)
            result["restoration"][style] = restoration_table(model, sched, xs, name, steps, seed, n_mean=n_mean)
            result["n_images"][style] = len(xs)
    else:
        result["restoration"] = restoration_table(model, sched, x, name, steps, seed)
    result["targets"] = targets(name, result["restoration"])
    (out / f"{name}-eval.json").write_text(json.dumps(result, indent=2) + "\n")
    write_card(name, rec, result, out)
    return result


def _restoration_lines(name: str, r: dict) -> list[str]:
    """The card's restoration tables: one per art style for emoji, one for Fashion-MNIST."""
    lines: list[str] = []
    tables = r["restoration"] if name.startswith("emoji") else {None: r["restoration"]}
    for style, table in tables.items():
        n_img = r["n_images"][style] if style else r["n_images"]
        where = f" ({style} style)" if style else ""
        lines += ["", f"## Restoration on {n_img} held-out images{where} (DDNM {r['steps']} steps, eta 0.85)", ""]
        if style is None or style == next(iter(tables)):
            lines += [
                f"PSNR: mean ± std (median) over images, each image's PSNR capped at {metrics.PSNR_CAP_DB:.1f} "
                "dB, the 8-bit rounding limit, so that exact reconstructions do not dominate the mean; SSIM: "
                "mean ± std; consistency: ||A x - y|| / ||y||; ahead of baseline: the share of images on which "
                "the method's PSNR beats the classical method's (A^dagger y's where there is none: for "
                "colorization, the gray image).",
                "",
            ]
        lines += markdown_table(
            ["task", "method", "PSNR (dB)", "SSIM", "consistency", "ahead of baseline"],
            [
                [task, m, *score_cells(v), "—" if m == ms["_baseline"] else f"{100 * v['beats_baseline']:.0f} %"]
                for task, ms in table.items()
                for m, v in ms.items()
                if not m.startswith("_")
            ],
        )
    return lines


def _target_lines(r: dict) -> list[str]:
    """The card's table of the targets the model is trained towards (none: no lines)."""
    lines: list[str] = []
    if r.get("targets"):
        lines += [
            "",
            "## Targets",
            "",
            "What this model is trained towards (`evaluate.targets`); PSNR means in dB.",
            "",
            *markdown_table(
                ["style", "target", "value", "versus", "met"],
                [
                    [
                        t["style"],
                        t["target"],
                        f"{t['value']:.2f}" + (f" (ahead on {100 * t['wins']:.0f} %)" if "wins" in t else ""),
                        f"{t['versus']:.2f}",
                        "yes" if t["met"] else "**no**",
                    ]
                    for t in r["targets"]
                ],
            ),
        ]
    return lines


def write_card(name: str, rec: dict, r: dict, out: Path) -> None:
    if rec.get("train_data"):  # a model trained before the shipped training set changed
        ds = rec["train_data"]
    elif name.startswith("emoji"):
        m = json.loads((data.ASSETS / "manifest.json").read_text())["emoji/train.npz"]
        ds = (
            f"emoji in {len(m['per_style'])} art styles, RGB, {m['n']:,} training images ("
            + ", ".join(f"{k} {v:,}" for k, v in m["per_style"].items())
            + "; at most two per base emoji; data/README.md)"
        )
    else:
        ds = "Fashion-MNIST (60,000 training images, grayscale, zero-padded to 32x32)"
    lines = [
        f"# Model card: `{name}`",
        "",
        "An epsilon-prediction UNet (DDPM-style) trained by `python -m ddnm_edu.tools.train --config "
        f"{name}`; the shipped file holds its EMA weights. Numbers below come from "
        f"`ddnm_edu.tools.evaluate.evaluate_model('{name}', n={r.get('n')}, steps={r['steps']}, seed={r['seed']}, "
        f"n_samples={r['n_samples']}, sample_steps={r['sample_steps']}, n_loss={r['loss_images']})` "
        f"(`python -m ddnm_edu.tools.evaluate models --name {name}` runs the full-size version).",
        "",
        *([f"**Status:** {rec['status']}", ""] if rec.get("status") else []),
        "| | |",
        "|---|---|",
        f"| data | {ds} |",
        f"| parameters | {rec['params']:,} |",
        f"| architecture | ch {rec['unet']['ch']}, mult {rec['unet']['ch_mult']}, "
        f"{rec['unet']['num_res_blocks']} res blocks/level, attention at {rec['unet']['attn_resolutions']} |",
        "| schedule | linear beta 1e-4 to 0.02, T = 1000 |",
        f"| optimiser steps | {rec['steps']:,} (batch {rec['batch']}, AdamW lr {rec['lr']}, EMA {rec['ema']}) |",
        f"| hardware | {rec['hardware']} |",
        f"| training wall time | {rec['train_wall_minutes']} min (wall clock while the run was alive, "
        "including any time it was paused) |",
        f"| final training loss | {rec.get('final_loss', 'n/a')} (mean of the last 500 steps) |",
        f"| sha256 | `{rec['sha256']}` |",
        "",
        f"## Samples (DDIM, {r['sample_steps']} steps, eta = {r.get('sample_eta', 0.0):g}, x0_t clipped, "
        f"seed {r['seed']})",
        "",
        f"![samples]({name}-samples.png)",
        "",
        f"## Denoising loss by timestep ({r['loss_images']} held-out vs {r['loss_images']} training images)",
        "",
        *markdown_table(
            ["t", "held-out", "training"],
            [
                [k, f"{v:.4f}", f"{r['loss_train'][k]:.4f}" if k in r.get("loss_train", {}) else "n/a"]
                for k, v in r["loss_test"].items()
            ],
        ),
    ]
    if "nearest" in r:
        nn = r["nearest"]
        lines += [
            "",
            "## Memorisation check",
            "",
            f"L2 distance (on [-1, 1] pixels) from 16 samples to their nearest training image: "
            f"{nn['sample_to_train_L2'][0]:.2f} ± {nn['sample_to_train_L2'][1]:.2f}; from held-out images "
            f"to theirs: {nn['test_to_train_L2'][0]:.2f} ± {nn['test_to_train_L2'][1]:.2f}.",
            "",
            f"![sample / nearest training image, in pairs]({name}-nearest.png)",
        ]
    lines += _restoration_lines(name, r) + _target_lines(r)
    lines += posterior_section(name)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


POSTERIOR_HEADING = "## What DDNM samples"


def posterior_section(name: str, bench: Path = BENCH_DIR) -> list[str]:
    """The card's section on DDNM's samples, quoted from ``benchmarks/posterior.json`` (written by
    ``python benchmarks/posterior.py``); no lines when that file has no row for ``name``."""
    path = bench / "posterior.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    rows = [r for r in report["rows"] if r["model"] == name]
    if not rows:
        return []
    info, k = report["info"], report["info"]["k"]
    return [
        "",
        POSTERIOR_HEADING,
        "",
        f"From `benchmarks/posterior.md` (`{info['command']}`): {info['n']} held-out images per task"
        + (" (emoji whose base emoji has no sibling in the training set), " if name.startswith("emoji") else ", ")
        + f"K = {k} DDNM samples of each ({info['steps']} steps, eta 0.85, noise-free y). PSNR in dB, mean over "
        "images. *Exact sampler*: what the mean of the samples would score if they were exact posterior "
        "samples with the measured single-sample error; *shared / spread*: the error the samples share over "
        "their spread (1 for an exact sampler); *coverage*: pixels with |x - mean| <= 2 std, in brackets the "
        "value for a calibrated spread; *rank corr.*: Spearman's between std and |x - mean|. Chapter 12 "
        "explains each.",
        "",
        *markdown_table(
            [
                "task",
                "one sample",
                f"mean of {k}",
                f"exact sampler, mean of {k}",
                "shared / spread",
                "coverage (calibrated)",
                "rank corr.",
            ],
            [
                [
                    r["task"],
                    f"{r['psnr_one']:.2f}",
                    f"{r['psnr_mean'][str(k)]:.2f}",
                    f"{r['psnr_exact_prediction'][str(k)]:.2f}",
                    f"{r['shared_over_spread']:.2f}",
                    f"{r['calibration_coverage']:.3f} ({r['calibration_expected']:.3f})",
                    f"{r['calibration_spearman']:.2f}",
                ]
                for r in rows
            ],
        ),
    ]


def refresh_posterior_section(name: str, out: Path, bench: Path = BENCH_DIR) -> Path:
    """Replace (or add) the card's posterior section, leaving the rest of ``out/<name>.md`` as measured."""
    card = out / f"{name}.md"
    text = card.read_text()
    head = text.split("\n" + POSTERIOR_HEADING + "\n")[0].rstrip("\n")
    card.write_text("\n".join([head, *posterior_section(name, bench)]) + "\n")
    return card
