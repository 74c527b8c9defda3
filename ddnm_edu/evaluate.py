"""Evidence of quality for the shipped models, written into their model cards.

    python -m ddnm_edu.evaluate models                 # both models, the full card numbers
    python -m ddnm_edu.evaluate models --name emoji-32 --n 32 --steps 20   # a quick look

For each model: unconditional DDIM samples (a grid), the held-out denoising loss by timestep
bucket next to the training loss, for emoji the nearest training image of some samples, and DDNM
on the held-out set next to A^dagger y and a classical method (bicubic for SR, biharmonic
inpainting). Results go to ``data/weights/<name>.md`` (the model card), ``<name>-eval.json`` and
PNG figures beside them.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from . import baselines, data, metrics
from . import operators as ops
from .errors import CommandParser, DDNMInputError, run_command
from .pretrained import WEIGHTS_DIR, _record, available, load_pretrained, registry
from .settings import best_device
from .sampling import ddnm, sample
from .schedule import NoiseSchedule

BUCKETS = ((0, 100), (100, 300), (300, 600), (600, 1000))


def save_grid(images: torch.Tensor, path: Path, ncol: int = 8, scale: int = 2) -> None:
    """(N, C, H, W) in [-1, 1] -> PNG grid."""
    from PIL import Image

    arr = data.to_uint8(images)  # (N, C, H, W)
    N, C, H, W = arr.shape
    nrow = -(-N // ncol)
    grid = np.full((C, nrow * (H + 2) + 2, ncol * (W + 2) + 2), 255, np.uint8)
    for i, im in enumerate(arr):
        r, c = divmod(i, ncol)
        grid[:, 2 + r * (H + 2): 2 + r * (H + 2) + H, 2 + c * (W + 2): 2 + c * (W + 2) + W] = im
    img = Image.fromarray(grid[0] if C == 1 else grid.transpose(1, 2, 0))
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)


@torch.no_grad()
def bucket_losses(model, sched: NoiseSchedule, x0: torch.Tensor, seed: int = 0, batch: int = 250) -> dict:
    """Mean ||eps - eps_theta(x_t, t)||^2 per timestep bucket, t uniform in the bucket."""
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device if hasattr(model, "parameters") else x0.device
    out = {}
    for lo, hi in BUCKETS:
        total, n = 0.0, 0
        for i in range(0, len(x0), batch):
            xb = x0[i:i + batch]
            t = torch.randint(lo, hi, (len(xb),), generator=g)
            eps = torch.randn(xb.shape, generator=g)
            pred = model(sched.add_noise(xb, eps, t).to(dev), t.to(dev)).to(xb.device)
            total += float(((pred - eps) ** 2).mean(dim=(1, 2, 3)).sum())
            n += len(xb)
        out[f"{lo}-{hi - 1}"] = total / n
    return out


def tasks_for(name: str, size: int = 32) -> dict:
    t = {
        "sr4": ops.SuperResolution(4),
        "inpaint-random50": ops.Inpainting(ops.Inpainting.random_mask(size, 0.5, seed=0)),
        "inpaint-box12": ops.Inpainting(ops.Inpainting.box_mask(size, 12)),
    }
    if name.startswith("emoji"):
        t["colorize"] = ops.Colorization()
    return t


def classical(task: str, op, y: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """The classical baseline of a task (for colorization, gray replication *is* A^dagger y)."""
    if task.startswith("sr"):
        return "bicubic", baselines.bicubic_upsample(y, op.scale)
    if task.startswith("inpaint"):
        return "biharmonic", baselines.biharmonic_inpaint(y, op)
    return None


def _stats(v: torch.Tensor) -> list[float]:
    """[mean, std, median] over images."""
    v = v.double()
    return [float(v.mean()), float(v.std()) if len(v) > 1 else 0.0, float(v.median())]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR capped at the 8-bit rounding limit (``metrics.PSNR_CAP_DB``), for every method alike:
    an exact reconstruction (a gray emoji colorized by A^dagger y, a white box region) would otherwise add
    ~206 dB to the mean."""
    return metrics.psnr(a, b, max_db=metrics.PSNR_CAP_DB)


def _med(v: list[float]) -> str:
    return f" ({v[2]:.2f})" if len(v) > 2 else ""


def restoration_table(model, sched, x: torch.Tensor, name: str, steps: int, seed: int, batch: int = 64,
                      n_mean: int = 0) -> dict:
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
        base = classical(task, op, y)
        if base is not None:
            outs[base[0]] = base[1]
        baseline = base[0] if base is not None else "A^dagger y"

        def run(s0: int) -> torch.Tensor:
            return torch.cat([ddnm(model, sched, op, y[i:i + batch], steps=steps, eta=0.85, seed=s0 + i)
                              for i in range(0, len(x), batch)])

        t0 = time.time()
        outs["DDNM"] = run(seed)
        secs = time.time() - t0
        if n_mean > 1 and task == "inpaint-box12":
            outs[f"DDNM mean of {n_mean}"] = torch.stack(
                [outs["DDNM"]] + [run(seed + 100_000 * k) for k in range(1, n_mean)]).mean(0)
        psnrs = {m: _psnr(o, x) for m, o in outs.items()}
        res[task] = {m: {"psnr": _stats(psnrs[m]), "ssim": _stats(metrics.ssim(o, x)),
                         "consistency": _stats(metrics.consistency(op, o, y)),
                         "beats_baseline": float((psnrs[m] > psnrs[baseline]).double().mean())}
                     for m, o in outs.items()}
        res[task]["_ddnm_seconds"] = secs
        res[task]["_baseline"] = baseline
        print(f"  {task}: " + ", ".join(f"{m} {v['psnr'][0]:.2f} dB" for m, v in res[task].items()
                                       if not m.startswith("_")), flush=True)
    return res


def targets(name: str, restoration: dict) -> list[dict]:
    """The quality targets the shipped models are trained towards, checked on a restoration table.

    fashion-mnist-32 (100 steps, 256 held-out images): DDNM 4x SR >= 21.3 dB, 12x12 box >= 27.0 dB.
    emoji-32, on every held-out set (each style, and ``noto-unseen`` in ``benchmarks/prior_check.py``): DDNM
    ahead of bicubic on 4x SR and of biharmonic on random-50 % inpainting; the mean of 4 DDNM samples ahead of biharmonic on the 12x12 box; colorization ahead of the
    gray image on the mean and on most images. ``restoration`` is one table (fashion) or
    ``{style: table}`` (emoji).
    """
    rows = []
    if not name.startswith("emoji"):
        for task, goal in (("sr4", 21.3), ("inpaint-box12", 27.0)):
            v = restoration[task]["DDNM"]["psnr"][0]
            rows.append({"style": "-", "target": f"{task}: DDNM >= {goal} dB", "value": v, "versus": goal,
                         "met": v >= goal})
        return rows
    for style, table in restoration.items():
        for task, method in (("sr4", "DDNM"), ("inpaint-random50", "DDNM"), ("inpaint-box12", "DDNM mean of 4"),
                             ("colorize", "DDNM")):
            if method not in table.get(task, {}):
                continue
            r, b = table[task][method], table[task][table[task]["_baseline"]]
            met = r["psnr"][0] > b["psnr"][0]
            label = f"{task}: {method} > {table[task]['_baseline']}"
            if task == "colorize":
                label += " (mean and most images)"
                met = met and r["beats_baseline"] > 0.5
            rows.append({"style": style, "target": label, "value": r["psnr"][0], "versus": b["psnr"][0],
                         "wins": r["beats_baseline"], "met": met})
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


def evaluate_model(name: str, n: int | None, steps: int, seed: int, out: Path, n_samples: int = 64,
                   sample_steps: int = 100, n_loss: int | None = None, sample_eta: float = 1.0,
                   weights: Path | None = None, n_mean: int = 4) -> dict:
    """All model-card numbers for ``name``; ``n``/``n_samples``/``n_loss`` shrink it for quick looks.

    Samples use stochastic DDIM (``sample_eta=1``, DDPM-like) with x0_t clipped: with these tiny models
    deterministic DDIM (eta = 0) gives washed-out, grayish images (chapter 3 shows both).
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
    result: dict = {"model": name, "n": n, "n_images": len(x), "steps": steps, "seed": seed, "eta": 0.85,
                    "sample_steps": sample_steps, "sample_eta": sample_eta, "n_samples": n_samples,
                    "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()}
    t0 = time.time()
    samples = sample(model, sched, (n_samples, rec["unet"]["in_channels"], 32, 32), steps=sample_steps,
                     eta=sample_eta, seed=seed).cpu()
    save_grid(samples, out / f"{name}-samples.png")
    result["samples_seconds"] = time.time() - t0
    if dataset == "emoji":
        train = data.load("emoji", "train")
    else:
        imgs, _ = (data.fashion_mnist_raw("train") if data.FASHION_DIR.exists() else (None, None))
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
        result["nearest"] = {"sample_to_train_L2": _stats(nnr["sample_nn_dist"]),
                             "test_to_train_L2": _stats(nnr["test_nn_dist"])}
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


def write_card(name: str, rec: dict, r: dict, out: Path) -> None:
    if name.startswith("emoji"):
        m = json.loads((data.REPO_DATA / "manifest.json").read_text())["emoji/train.npz"]
        ds = (f"emoji in {len(m['per_style'])} art styles, RGB, {m['n']:,} training images ("
              + ", ".join(f"{k} {v:,}" for k, v in m["per_style"].items())
              + "; at most two per base emoji; data/README.md)")
    else:
        ds = "Fashion-MNIST (60,000 training images, grayscale, zero-padded to 32x32)"
    lines = [f"# Model card: `{name}`", "",
             "An epsilon-prediction UNet (DDPM-style) trained by `python -m ddnm_edu.train --config "
             f"{name}`; the shipped file holds its EMA weights. Numbers below come from "
             f"`ddnm_edu.evaluate.evaluate_model('{name}', n={r.get('n')}, steps={r['steps']}, seed={r['seed']}, "
             f"n_samples={r['n_samples']}, sample_steps={r['sample_steps']}, n_loss={r['loss_images']})` "
             f"(`python -m ddnm_edu.evaluate models --name {name}` runs the full-size version).", "",
             *([f"**Status:** {rec['status']}", ""] if rec.get("status") else []),
             "| | |", "|---|---|",
             f"| data | {ds} |",
             f"| parameters | {rec['params']:,} |",
             f"| architecture | ch {rec['unet']['ch']}, mult {rec['unet']['ch_mult']}, "
             f"{rec['unet']['num_res_blocks']} res blocks/level, attention at {rec['unet']['attn_resolutions']} |",
             f"| schedule | linear beta 1e-4 to 0.02, T = 1000 |",
             f"| optimiser steps | {rec['steps']:,} (batch {rec['batch']}, AdamW lr {rec['lr']}, EMA {rec['ema']}) |",
             f"| hardware | {rec['hardware']} |",
             f"| training wall time | {rec['train_wall_minutes']} min (wall clock while the run was alive, "
             "including any time it was paused) |",
             f"| final training loss | {rec.get('final_loss', 'n/a')} (mean of the last 500 steps) |",
             f"| sha256 | `{rec['sha256']}` |", "",
             f"## Samples (DDIM, {r['sample_steps']} steps, eta = {r.get('sample_eta', 0.0):g}, x0_t clipped, "
             f"seed {r['seed']})", "",
             f"![samples]({name}-samples.png)", "",
             f"## Denoising loss by timestep ({r['loss_images']} held-out vs {r['loss_images']} training images)", "",
             "| t | held-out | training |", "|---|---|---|"]
    for k, v in r["loss_test"].items():
        tr = r.get("loss_train", {}).get(k)
        lines.append(f"| {k} | {v:.4f} | {tr:.4f} |" if tr is not None else f"| {k} | {v:.4f} | n/a |")
    if "nearest" in r:
        nn = r["nearest"]
        lines += ["", "## Memorisation check", "",
                  f"L2 distance (on [-1, 1] pixels) from 16 samples to their nearest training image: "
                  f"{nn['sample_to_train_L2'][0]:.2f} ± {nn['sample_to_train_L2'][1]:.2f}; from held-out images "
                  f"to theirs: {nn['test_to_train_L2'][0]:.2f} ± {nn['test_to_train_L2'][1]:.2f}.", "",
                  f"![sample / nearest training image, in pairs]({name}-nearest.png)"]
    tables = r["restoration"] if name.startswith("emoji") else {None: r["restoration"]}
    for style, table in tables.items():
        n_img = r["n_images"][style] if style else r["n_images"]
        where = f" ({style} style)" if style else ""
        lines += ["", f"## Restoration on {n_img} held-out images{where} (DDNM {r['steps']} steps, eta 0.85)", ""]
        if style is None or style == next(iter(tables)):
            lines += [f"PSNR: mean ± std (median) over images, each image's PSNR capped at {metrics.PSNR_CAP_DB:.1f} "
                      "dB, the 8-bit rounding limit, so that exact reconstructions do not dominate the mean; SSIM: "
                      "mean ± std; consistency: ||A x - y|| / ||y||; ahead of baseline: the share of images on which "
                      "the method's PSNR beats the classical method's (A^dagger y's where there is none: for "
                      "colorization, the gray image).", ""]
        lines += ["| task | method | PSNR (dB) | SSIM | consistency | ahead of baseline |", "|---|---|---|---|---|---|"]
        for task, ms in table.items():
            for m, v in ms.items():
                if m.startswith("_"):
                    continue
                ahead = "—" if m == ms["_baseline"] else f"{100 * v['beats_baseline']:.0f} %"
                lines.append(f"| {task} | {m} | {v['psnr'][0]:.2f} ± {v['psnr'][1]:.2f}{_med(v['psnr'])} | "
                             f"{v['ssim'][0]:.3f} ± {v['ssim'][1]:.3f} | {v['consistency'][0]:.1e} | {ahead} |")
    if r.get("targets"):
        lines += ["", "## Targets", "", "What this model is trained towards (`evaluate.targets`); PSNR means in dB.", "",
                  "| style | target | value | versus | met |", "|---|---|---|---|---|"]
        for t in r["targets"]:
            wins = f" (ahead on {100 * t['wins']:.0f} %)" if "wins" in t else ""
            lines.append(f"| {t['style']} | {t['target']} | {t['value']:.2f}{wins} | {t['versus']:.2f} | "
                         f"{'yes' if t['met'] else '**no**'} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- the paper's comparison in miniature
BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def compare_tasks() -> dict:
    """task -> (dataset, operator, sigma_y). Noisy tasks use DDNM+ noise scaling."""
    box = ops.Inpainting(ops.Inpainting.box_mask(32, 12))
    rnd = ops.Inpainting(ops.Inpainting.random_mask(32, 0.5, seed=0))
    t = {"sr4": ("fashion-mnist", ops.SuperResolution(4), 0.0),
         "sr2": ("fashion-mnist", ops.SuperResolution(2), 0.0),
         "inpaint-random50": ("fashion-mnist", rnd, 0.0),
         "inpaint-box12": ("fashion-mnist", box, 0.0),
         "colorize": ("emoji", ops.Colorization(), 0.0),
         "cs25": ("fashion-mnist", ops.CompressedSensing(0.25, seed=0), 0.0),
         "deblur-gauss1": ("fashion-mnist", ops.Deblur(ops.gaussian_kernel(1.0), rcond=1e-3), 0.0)}
    for sy in (0.05, 0.1, 0.2):
        t[f"sr4-noisy{sy}"] = ("fashion-mnist", ops.SuperResolution(4), sy)
        t[f"cs25-noisy{sy}"] = ("fashion-mnist", ops.CompressedSensing(0.25, seed=0), sy)
    return t


def _classical_any(task: str, op, y: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    if isinstance(op, ops.Deblur):
        return "Wiener", baselines.wiener_deconvolve(y, op, nsr=1e-3)
    if isinstance(op, ops.CompressedSensing) or isinstance(op, ops.Colorization):
        return None
    return classical(task, op, y)


def noisy_measurement(op, x: torch.Tensor, sigma_y: float, seed: int = 0) -> torch.Tensor:
    """y = A x + sigma_y n, with n drawn from the seed every comparison table uses (10,000 + seed)."""
    y = op.A(x)
    return y + sigma_y * torch.randn(y.shape, generator=torch.Generator().manual_seed(10_000 + seed))


def run_compare(quick: bool = True, n: int | None = None, steps: int | None = None, seed: int = 0,
                travel: tuple[int, int] = (5, 2), tasks: list[str] | None = None, n_mean: int = 4) -> list[dict]:
    """Every method on every task with the same model, schedule, steps and seeds. Returns rows."""
    from . import ddrm as ddrm_mod
    from .dps import dps
    from .sampling import SamplerSettings, ddnm_plus, nfe_count

    n = n or (8 if quick else None)
    steps = steps or (20 if quick else 100)
    sched = NoiseSchedule.linear(1000)
    dev = best_device()
    models = {"fashion-mnist": load_pretrained("fashion-mnist-32", dev), "emoji": load_pretrained("emoji-32", dev)}
    rows = []
    L, R = travel
    L = min(L, steps - 1)
    for task, (dataset, op, sy) in compare_tasks().items():
        if tasks and task not in tasks:
            continue
        model = models[dataset]
        x = data.load(dataset, "test")
        x = x[:n] if n else (x[:256] if dataset == "fashion-mnist" else x)
        y = noisy_measurement(op, x, sy, seed)
        nfe_tt = nfe_count(steps, L, R)
        outs: dict[str, tuple[torch.Tensor, int, float]] = {}

        def timed(name, fn, nfe):
            t0 = time.time()
            outs[name] = (fn(), nfe, time.time() - t0)

        timed("A^dagger y", lambda: op.A_pinv(y), 0)
        base = _classical_any(task, op, y)
        if base is not None:
            outs[base[0]] = (base[1], 0, 0.0)
        if op.has_svd:  # the DDRM-style sampler works in the operator's singular basis
            timed("DDRM", lambda: ddrm_mod.ddrm(model, sched, op, y, sigma_y=sy, steps=steps, seed=seed), steps)
        timed("DPS", lambda: dps(model, sched, op, y, steps=steps, seed=seed), steps)
        timed("DDNM", lambda: ddnm_plus(model, sched, op, y, steps=steps, seed=seed).x0_hat, steps)
        if sy > 0:
            timed("DDNM+ (scaling)", lambda: ddnm_plus(model, sched, op, y, sigma_y=sy, steps=steps,
                                                       seed=seed).x0_hat, steps)
        travel = SamplerSettings(travel_length=L, travel_repeat=R)
        timed(f"DDNM+ (travel {L}x{R})", lambda: ddnm_plus(model, sched, op, y, sigma_y=sy, steps=steps, settings=travel,
                                                         seed=seed).x0_hat, nfe_tt)
        timed(f"DDNM+ ({nfe_tt} steps, no travel)", lambda: ddnm_plus(model, sched, op, y, sigma_y=sy, steps=nfe_tt,
                                                                     seed=seed).x0_hat, nfe_tt)
        samples = torch.stack([ddnm_plus(model, sched, op, y, sigma_y=sy, steps=steps, seed=seed + k).x0_hat
                               for k in range(n_mean)])
        outs[f"DDNM mean of {n_mean}"] = (samples.mean(0), steps * n_mean, 0.0)
        for name, (xh, nfe, secs) in outs.items():
            rows.append({"task": task, "dataset": dataset, "sigma_y": sy, "method": name, "nfe": nfe,
                         "psnr": _stats(_psnr(xh, x)), "ssim": _stats(metrics.ssim(xh, x)),
                         "consistency": _stats(metrics.consistency(op, xh, y)), "seconds": round(secs, 2),
                         "n": len(x), "steps": steps})
        best = max((r for r in rows if r["task"] == task), key=lambda r: r["psnr"][0])
        print(f"{task}: best {best['method']} {best['psnr'][0]:.2f} dB", flush=True)
    return rows


def write_compare(rows: list[dict], out: Path, label: str, seconds: float) -> None:
    import csv

    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"results-{label}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "dataset", "sigma_y", "method", "nfe", "psnr_mean", "psnr_std", "psnr_median", "ssim_mean",
                    "ssim_std", "ssim_median", "consistency_mean", "consistency_std", "consistency_median", "seconds",
                    "n_images", "steps"])
        for r in rows:
            w.writerow([r["task"], r["dataset"], r["sigma_y"], r["method"], r["nfe"], *(f"{v:.4f}" for v in r["psnr"]),
                        *(f"{v:.4f}" for v in r["ssim"]), *(f"{v:.3e}" for v in r["consistency"]), r["seconds"],
                        r["n"], r["steps"]])
    reg = registry()
    lines = [f"# Zero-shot restoration in miniature ({label})", "",
             f"`python -m ddnm_edu.evaluate compare --{label}` — {rows[0]['n'] if rows else 0} held-out images per task "
             f"(Fashion-MNIST; emoji for colorization), {rows[0]['steps'] if rows else 0} sampling steps, seed 0, "
             f"eta 0.85; models: " + ", ".join(f"{k} ({reg[k]['steps']:,} training steps)" for k in available("diffusion")) +
             f"; machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
             f"wall time {seconds / 60:.1f} min.", "",
             f"PSNR (dB): mean ± std (median) over images, each capped at {metrics.PSNR_CAP_DB:.1f} dB (the 8-bit "
             "rounding limit; no effect unless a method is exact); SSIM: mean ± std; consistency: mean "
             "||A x - y|| / ||y||; NFE: network evaluations per image (DPS's include a backward pass).", "",
             "| task | method | NFE | PSNR | SSIM | consistency |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['method']} | {r['nfe']} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f}"
                     f"{_med(r['psnr'])} | "
                     f"{r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f} | {r['consistency'][0]:.1e} |")
    lines += ["", "## Headline", "",
              "Best method per task by mean PSNR (any NFE), and the three zero-shot samplers at equal NFE "
              "(DDRM-style covers only operators with an SVD form; on noisy y the DDNM column is DDNM+ with noise "
              "scaling):", "", *headline_markdown(rows)]
    (out / f"results-{label}.md").write_text("\n".join(lines) + "\n")


ZERO_SHOT_PEERS = ("DDNM", "DDRM", "DPS")


def headline(rows: list[dict]) -> list[dict]:
    """Per task: the best method by mean PSNR, and DDNM vs DDRM-style vs DPS-style at equal NFE.

    On noisy tasks (sigma_y > 0) the DDNM column is DDNM+ with noise scaling (same NFE), as in the paper;
    ``ddnm_method`` names the row used.
    ``ddnm_first`` says whether the paper's ordering holds here: DDNM's mean PSNR at least that of each
    peer present (DDRM-style covers only operators with an SVD form). Ties count for DDNM.
    """
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        rs = [r for r in rows if r["task"] == task]
        best = max(rs, key=lambda r: r["psnr"][0])
        noisy = any(r["sigma_y"] > 0 for r in rs)
        ours = "DDNM+ (scaling)" if noisy else "DDNM"  # on noisy y the paper's method is DDNM+
        compared = [r for r in rs if r["method"] in (ours, *ZERO_SHOT_PEERS[1:])]
        if len({r["nfe"] for r in compared}) > 1:
            raise ValueError(f"{task}: DDNM, DDRM and DPS must be compared at equal NFE")
        peers = {("DDNM" if r["method"] == ours else r["method"]): r["psnr"][0] for r in compared}
        out.append({"task": task, "best": best["method"], "best_psnr": best["psnr"][0], "nfe": best["nfe"],
                    "ddnm_method": ours, **{m: peers.get(m) for m in ZERO_SHOT_PEERS},
                    "ddnm_first": "DDNM" in peers and all(peers["DDNM"] >= v for v in peers.values())})
    return out


def headline_markdown(rows: list[dict]) -> list[str]:
    """The :func:`headline` as Markdown table lines."""
    cell = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["| task | best (PSNR, NFE) | DDNM (DDNM+ if noisy) | DDRM-style | DPS-style | DDNM ≥ both peers |",
             "|---|---|---|---|---|---|"]
    for h in headline(rows):
        lines.append(f"| {h['task']} | {h['best']} ({h['best_psnr']:.2f}, {h['nfe']}) | {cell(h['DDNM'])} | "
                     f"{cell(h['DDRM'])} | {cell(h['DPS'])} | {'yes' if h['ddnm_first'] else '**no**'} |")
    return lines


def read_compare(path: Path) -> list[dict]:
    """Read a ``results-*.csv`` written by :func:`write_compare` back into rows (means, stds, medians)."""
    import csv

    with open(path, newline="") as f:
        rows = []
        for r in csv.DictReader(f):
            rows.append({"task": r["task"], "dataset": r["dataset"], "sigma_y": float(r["sigma_y"]),
                         "method": r["method"], "nfe": int(r["nfe"]),
                         **{k: [float(r[f"{k}_{s}"]) for s in ("mean", "std", "median")]
                            for k in ("psnr", "ssim", "consistency")},
                         "seconds": float(r["seconds"]), "n": int(r["n_images"]), "steps": int(r["steps"])})
    return rows


# --------------------------------------------------------------------------- specialist vs zero-shot
#: The supervised specialists (chapter 10) and the task each was trained for (``restormer.TASKS``).
SPECIALISTS = {"restormer-sr4": "sr4", "restormer-denoise": "denoise"}


def specialist_problems() -> dict:
    """problem -> (operator, sigma_y): the specialists' own tasks, then problems neither was trained for."""
    from .restormer import TASKS, task_operator

    return {**{task: (task_operator(task), spec["sigma"]) for task, spec in TASKS.items()},
            "sr2": (ops.SuperResolution(2), 0.0),
            "sr4-noisy0.2": (ops.SuperResolution(4), 0.2),
            "inpaint-box12": (ops.Inpainting(ops.Inpainting.box_mask(32, 12)), 0.0),
            "deblur-gauss1": (ops.Deblur(ops.gaussian_kernel(1.0), rcond=1e-3), 0.0)}


def run_specialist(n: int = 128, steps: int = 100, seed: int = 0, problems: list[str] | None = None,
                   batch: int = 128, progress: bool = True) -> dict:
    """The supervised Restormers next to DDNM on the same held-out Fashion-MNIST images.

    Every problem gives y = A x + sigma_y n; every network sees A^dagger y (what the SR specialist was
    trained on; for denoising A^dagger y = y). Methods: A^dagger y, the classical method, each specialist
    f(A^dagger y) and its null-space rectification A^dagger y + (I - A^dagger A) f(A^dagger y)
    (``operators.rectify``), and DDNM (DDNM+ with noise scaling when sigma_y > 0) at ``steps`` NFE.
    Seconds are per image, the batch run divided by its size, on this machine.
    """
    from .sampling import ddnm_plus

    dev = best_device()
    sched = NoiseSchedule.linear(1000)
    prior = load_pretrained("fashion-mnist-32", dev)
    nets = {k: load_pretrained(k, dev) for k in SPECIALISTS}
    x = data.load("fashion-mnist", "test")[:n]
    rows = []
    for problem, (op, sy) in specialist_problems().items():
        if problems and problem not in problems:
            continue
        y = noisy_measurement(op, x, sy, seed)
        x_in = op.A_pinv(y)
        outs: dict[str, tuple[torch.Tensor, int, float, str | None]] = {"A^dagger y": (x_in, 0, 0.0, None)}
        base = _classical_any(problem, op, y)
        if base is not None:
            outs[base[0]] = (base[1], 0, 0.0, None)
        for name, trained_for in SPECIALISTS.items():
            with torch.no_grad():
                nets[name](x_in[:1].to(dev))  # warm-up: the first call of a shape allocates; not timed
            t0 = time.perf_counter()
            with torch.no_grad():
                f = torch.cat([nets[name](x_in[i:i + batch].to(dev)).cpu() for i in range(0, len(x), batch)])
            secs = (time.perf_counter() - t0) / len(x)
            outs[name] = (f, 1, secs, trained_for)
            outs[f"{name} rectified"] = (ops.rectify(op, y, f), 1, secs, trained_for)
        t0 = time.perf_counter()
        xh = torch.cat([ddnm_plus(prior, sched, op, y[i:i + batch], sigma_y=sy, steps=steps, seed=seed + i,
                                  progress=progress).x0_hat.cpu() for i in range(0, len(x), batch)])
        outs["DDNM+" if sy > 0 else "DDNM"] = (xh, steps, (time.perf_counter() - t0) / len(x), "any")
        for method, (xh, nfe, secs, trained_for) in outs.items():
            rows.append({"problem": problem, "sigma_y": sy, "method": method, "nfe": nfe,
                         "own_task": trained_for == problem or trained_for == "any",
                         "psnr": _stats(_psnr(xh, x)), "ssim": _stats(metrics.ssim(xh, x)),
                         "consistency": _stats(metrics.consistency(op, xh, y)), "seconds_per_image": secs})
        if progress:
            print(f"{problem}: " + ", ".join(f"{r['method']} {r['psnr'][0]:.2f}" for r in rows
                                             if r["problem"] == problem), flush=True)
    return {"n": len(x), "steps": steps, "seed": seed, "rows": rows, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": str(dev),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}


def evaluate_specialist(name: str, out: Path, n: int = 256, seed: int = 0) -> dict:
    """The model card of a supervised specialist: held-out PSNR / SSIM / consistency on its own task
    (one forward pass per image) next to A^dagger y, the classical method and its rectified output, an
    example figure and the learning curve (``<name>-loss.csv``, copied from the run at export)."""
    from .restormer import TASKS, measure, task_operator

    rec = dict(_record(name))
    task = rec["task"]
    model = load_pretrained(name)
    x = data.load("fashion-mnist", "test")[:n]
    op = task_operator(task)
    y, x_in = measure(task, x, torch.Generator().manual_seed(10_000 + seed))
    t0 = time.perf_counter()
    with torch.no_grad():
        f = model(x_in)
    secs = (time.perf_counter() - t0) / len(x)
    outs = {"A^dagger y": x_in, name: f, f"{name} rectified": ops.rectify(op, y, f)}
    base = _classical_any(task, op, y)
    if base is not None:
        outs[base[0]] = base[1]
    table = {m: {"psnr": _stats(_psnr(o, x)), "ssim": _stats(metrics.ssim(o, x)),
                 "consistency": _stats(metrics.consistency(op, o, y))} for m, o in outs.items()}
    k = 8
    save_grid(torch.cat([x[:k], x_in[:k], f[:k].clamp(-1, 1)]), out / f"{name}-examples.png", ncol=k, scale=3)
    lines = [f"# Model card: `{name}`", "",
             f"A tiny Restormer (Zamir et al., CVPR 2022; `ddnm_edu.restormer`) trained with supervision for one "
             f"task: {TASKS[task]['about']}. Trained by `python -m ddnm_edu.train --config {rec['dataset']}` "
             "(L1 loss between f(A^dagger y) and x, AdamW, EMA; the shipped file holds the EMA weights). Numbers "
             f"below: `python -m ddnm_edu.evaluate models --name {name}` ({len(x)} held-out Fashion-MNIST test "
             f"images, noise seed {10_000 + seed}).", "",
             "| | |", "|---|---|",
             "| data | Fashion-MNIST (60,000 training images, grayscale, zero-padded to 32x32) |",
             f"| parameters | {rec['params']:,} |",
             f"| architecture | dim {rec['restormer']['dim']}, blocks {rec['restormer']['num_blocks']}, "
             f"heads {rec['restormer']['heads']}, {rec['restormer']['num_refinement_blocks']} refinement block(s), "
             f"GDFN expansion {rec['restormer']['ffn_expansion_factor']} |",
             f"| optimiser steps | {rec['steps']:,} (batch {rec['batch']}, AdamW lr {rec['lr']}, EMA {rec['ema']}, "
             f"loss {rec.get('loss', 'l1')}) |",
             f"| hardware | {rec['hardware']} |",
             f"| training wall time | {rec['train_wall_minutes']} min |",
             f"| final training loss | {rec.get('final_loss', 'n/a')} (L1, mean of the last logged values) |",
             f"| time per image | {1e3 * secs:.2f} ms (one forward pass, batch {len(x)}, this machine) |",
             f"| sha256 | `{rec['sha256']}` |", "",
             f"## Held-out results on its own task ({task})", "",
             "| method | PSNR (dB) | SSIM | consistency |", "|---|---|---|---|"]
    for m, v in table.items():
        lines.append(f"| {m} | {v['psnr'][0]:.2f} ± {v['psnr'][1]:.2f}{_med(v['psnr'])} | "
                     f"{v['ssim'][0]:.3f} ± {v['ssim'][1]:.3f} | {v['consistency'][0]:.1e} |")
    lines += ["", "Rows of the figure: x, A^dagger y (the input), the specialist's output.", "",
              f"![examples]({name}-examples.png)", "",
              "Chapter 10 compares it with DDNM on this task and on problems it never saw "
              "(`python -m ddnm_edu.evaluate specialist`, `benchmarks/specialist.md`)."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    result = {"model": name, "task": task, "n_images": len(x), "seconds_per_image": secs, "restoration": table}
    (out / f"{name}-eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def specialist_markdown(report: dict, seconds: float | None = None) -> str:
    """The head-to-head table as Markdown (``benchmarks/specialist.md``)."""
    lines = ["# A supervised specialist vs zero-shot DDNM", "",
             f"`python -m ddnm_edu.evaluate specialist --n {report['n']} --steps {report['steps']}` — "
             f"{report['n']} held-out Fashion-MNIST images, seed {report['seed']}, DDNM at {report['steps']} NFE "
             f"(eta 0.85); device {report['device']}, {report['threads']} threads, torch {report['torch']}"
             + (f"; wall time {seconds / 60:.1f} min" if seconds else "") + ".", "",
             "Every network sees A^dagger y. `rectified` = A^dagger y + (I - A^dagger A) f(A^dagger y). "
             "Bold: the method was trained for this problem (DDNM: trained for none, used for all). "
             "PSNR capped at the 8-bit limit; consistency = mean ||A x - y|| / ||y||; seconds per image.", "",
             "| problem | method | NFE | PSNR (dB) | SSIM | consistency | s / image |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        m = f"**{r['method']}**" if r["own_task"] else r["method"]
        lines.append(f"| {r['problem']} | {m} | {r['nfe']} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} | "
                     f"{r['ssim'][0]:.3f} | {r['consistency'][0]:.1e} | {r['seconds_per_image']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = CommandParser(prog="python -m ddnm_edu.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("models", help="model-card numbers for the shipped models")
    m.add_argument("--name", action="append", help="model name (default: all shipped)")
    m.add_argument("--n", type=int, default=None, help="held-out images (default 256 fashion / all emoji)")
    m.add_argument("--steps", type=int, default=100)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    m.add_argument("--weights", type=Path, default=None,
                   help="measure this state dict (e.g. runs/emoji-32/ema.pt) instead of the shipped file; "
                        "use with one --name and an --out outside data/weights")
    c = sub.add_parser("compare", help="DDNM vs DDNM+ vs DDRM vs DPS vs baselines on the held-out sets")
    size = c.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="8 images, 20 steps (minutes on a CPU; the default)")
    size.add_argument("--full", action="store_true", help="256 Fashion-MNIST / all emoji test images, 100 steps")
    c.add_argument("--task", action="append", help="only these tasks")
    c.add_argument("--out", type=Path, default=BENCH_DIR)
    sp = sub.add_parser("specialist", help="the supervised Restormers vs DDNM on their own and unseen problems")
    sp.add_argument("--n", type=int, default=128, help="held-out Fashion-MNIST images")
    sp.add_argument("--steps", type=int, default=100)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--problem", action="append", help="only these problems")
    sp.add_argument("--out", type=Path, default=BENCH_DIR)
    args = ap.parse_args(argv)
    if args.cmd == "specialist":
        t0 = time.time()
        report = run_specialist(args.n, args.steps, args.seed, args.problem)
        report["wall_seconds"] = time.time() - t0
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "specialist.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "specialist.md").write_text(specialist_markdown(report, report["wall_seconds"]))
        print(f"wrote {args.out}/specialist.md and .json")
        return
    if args.cmd == "compare":
        label = "full" if args.full else "quick"
        t0 = time.time()
        rows = run_compare(quick=not args.full, tasks=args.task)
        write_compare(rows, args.out, label, time.time() - t0)
        print(f"wrote {args.out}/results-{label}.md and .csv")
        return
    names = args.name or available("diffusion")
    if args.weights is not None and len(names) != 1:
        raise DDNMInputError("--weights needs exactly one --name.")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name in SPECIALISTS:  # a supervised Restormer: one forward pass per image
            evaluate_specialist(name, args.out, args.n or 256, args.seed)
            continue
        evaluate_model(name, args.n, args.steps, args.seed, args.out, weights=args.weights)


if __name__ == "__main__":
    raise SystemExit(run_command("python -m ddnm_edu.evaluate", main))
