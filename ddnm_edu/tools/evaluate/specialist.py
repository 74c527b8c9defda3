"""The supervised specialists (chapter 13) next to DDNM, on their own problems and on problems neither was
trained for (``python -m ddnm_edu.tools.evaluate specialist`` writes ``benchmarks/specialist.md`` and ``.json``)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from ... import baselines, data
from ... import operators as ops
from ...pretrained import _record, load_pretrained
from ...schedule import NoiseSchedule
from ...book_scale import best_device
from ..images import save_grid
from .common import markdown_table, score_cells, scores
from .compare import noisy_measurement
from ...rng import image_streams, spawn

#: The supervised specialists (chapter 13) and the task each was trained for (``operators.TASKS``).
SPECIALISTS = {"restormer-sr4": "sr4", "restormer-denoise": "denoise-noisy0.2"}


def specialist_problems() -> dict:
    """problem -> (operator, sigma_y): the specialists' own tasks, then problems neither was trained for."""
    problems = (*SPECIALISTS.values(), "sr2", "sr4-noisy0.2", "inpaint-box12", "deblur-gauss1")
    return {p: (ops.from_name(p), ops.get_task(p).sigma_y) for p in problems}


def _ddnm_in_batches(prior, sched, op, y, sigma_y, steps, seed, batch, progress) -> torch.Tensor:
    """DDNM (DDNM+ when sigma_y > 0) on y in batches; image j draws from its own stream
    ``rng.spawn(seed, "image", j)``, so the result does not depend on the batch size."""
    from ...sampling import ddnm_plus

    out = []
    for i in range(0, len(y), batch):
        gens = image_streams(seed, range(i, min(i + batch, len(y))))
        res = ddnm_plus(
            prior, sched, op, y[i : i + batch], sigma_y=sigma_y, steps=steps, generator=gens, progress=progress
        )
        out.append(res.x0_hat.cpu())
    return torch.cat(out)


def run_specialist(
    n: int = 128,
    steps: int = 100,
    seed: int = 0,
    problems: list[str] | None = None,
    batch: int = 128,
    progress: bool = True,
) -> dict:
    """The supervised Restormers next to DDNM on the same held-out Fashion-MNIST images.

    Every problem gives y = A x + sigma_y n; every network sees A^dagger y (what the SR specialist was
    trained on; for denoising A^dagger y = y). Methods: A^dagger y, the classical method, each specialist
    f(A^dagger y) and its null-space rectification A^dagger y + (I - A^dagger A) f(A^dagger y)
    (``operators.rectify``), and DDNM (DDNM+ with noise scaling when sigma_y > 0) at ``steps`` NFE.
    Seconds are per image, the batch run divided by its size, on this machine.
    """
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
        base = baselines.classical(op, y)
        if base is not None:
            outs[base[0]] = (base[1], 0, 0.0, None)
        for name, trained_for in SPECIALISTS.items():
            with torch.no_grad():
                nets[name](x_in[:1].to(dev))  # warm-up: the first call of a shape allocates; not timed
            t0 = time.perf_counter()
            with torch.no_grad():
                f = torch.cat([nets[name](x_in[i : i + batch].to(dev)).cpu() for i in range(0, len(x), batch)])
            secs = (time.perf_counter() - t0) / len(x)
            outs[name] = (f, 1, secs, trained_for)
            outs[f"{name} rectified"] = (ops.rectify(op, y, f), 1, secs, trained_for)
        t0 = time.perf_counter()
        xh = _ddnm_in_batches(prior, sched, op, y, sy, steps, seed, batch, progress)
        outs["DDNM+" if sy > 0 else "DDNM"] = (xh, steps, (time.perf_counter() - t0) / len(x), "any")
        for method, (xh, nfe, secs, trained_for) in outs.items():
            rows.append(
                {
                    "problem": problem,
                    "sigma_y": sy,
                    "method": method,
                    "nfe": nfe,
                    "own_task": trained_for == problem or trained_for == "any",
                    **scores(op, xh, x, y),
                    "seconds_per_image": secs,
                }
            )
        if progress:
            print(
                f"{problem}: "
                + ", ".join(f"{r['method']} {r['psnr'][0]:.2f}" for r in rows if r["problem"] == problem),
                flush=True,
            )
    return {
        "n": len(x),
        "steps": steps,
        "seed": seed,
        "rows": rows,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def evaluate_specialist(name: str, out: Path, n: int = 256, seed: int = 0) -> dict:
    """The model card of a supervised specialist: held-out PSNR / SSIM / consistency on its own task
    (one forward pass per image) next to A^dagger y, the classical method and its rectified output, an
    example figure and the learning curve (``<name>-loss.csv``, copied from the run at export)."""
    from ...restormer import measure

    rec = dict(_record(name))
    task = rec["task"]
    model = load_pretrained(name)
    x = data.load("fashion-mnist", "test")[:n]
    op = ops.from_name(task)
    y, x_in = measure(task, x, spawn(seed, "measure"))
    t0 = time.perf_counter()
    with torch.no_grad():
        f = model(x_in)
    secs = (time.perf_counter() - t0) / len(x)
    outs = {"A^dagger y": x_in, name: f, f"{name} rectified": ops.rectify(op, y, f)}
    base = baselines.classical(op, y)
    if base is not None:
        outs[base[0]] = base[1]
    table = {m: scores(op, o, x, y) for m, o in outs.items()}
    k = 8
    save_grid(torch.cat([x[:k], x_in[:k], f[:k].clamp(-1, 1)]), out / f"{name}-examples.png", ncol=k, scale=3)
    lines = [
        f"# Model card: `{name}`",
        "",
        f"A tiny Restormer (Zamir et al., CVPR 2022; `ddnm_edu.restormer`) trained with supervision for one "
        f"task: {ops.get_task(task).about}; the network sees A^dagger y. Trained by "
        f"`python -m ddnm_edu.tools.train --config {rec['dataset']}` "
        "(L1 loss between f(A^dagger y) and x, AdamW, EMA; the shipped file holds the EMA weights). Numbers "
        f"below: `python -m ddnm_edu.tools.evaluate models --name {name}` ({len(x)} held-out Fashion-MNIST test "
        f"images, measurement noise from `rng.spawn({seed}, 'measure')`).",
        "",
        "| | |",
        "|---|---|",
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
        f"| sha256 | `{rec['sha256']}` |",
        "",
        f"## Held-out results on its own task ({task})",
        "",
        *markdown_table(
            ["method", "PSNR (dB)", "SSIM", "consistency"], [[m, *score_cells(v)] for m, v in table.items()]
        ),
    ]
    lines += [
        "",
        "Rows of the figure: x, A^dagger y (the input), the specialist's output.",
        "",
        f"![examples]({name}-examples.png)",
        "",
        "Chapter 13 compares it with DDNM on this task and on problems it never saw "
        "(`python -m ddnm_edu.tools.evaluate specialist`, `benchmarks/specialist.md`).",
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    result = {"model": name, "task": task, "n_images": len(x), "seconds_per_image": secs, "restoration": table}
    (out / f"{name}-eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def specialist_markdown(report: dict, seconds: float | None = None) -> str:
    """The head-to-head table as Markdown (``benchmarks/specialist.md``)."""
    lines = [
        "# A supervised specialist vs zero-shot DDNM",
        "",
        f"`python -m ddnm_edu.tools.evaluate specialist --n {report['n']} --steps {report['steps']}` — "
        f"{report['n']} held-out Fashion-MNIST images, seed {report['seed']}, DDNM at {report['steps']} NFE "
        f"(eta 0.85); device {report['device']}, {report['threads']} threads, torch {report['torch']}"
        + (f"; wall time {seconds / 60:.1f} min" if seconds else "")
        + ".",
        "",
        "Every network sees A^dagger y. `rectified` = A^dagger y + (I - A^dagger A) f(A^dagger y). "
        "Bold: the method was trained for this problem (DDNM: trained for none, used for all). "
        "PSNR capped at the 8-bit limit; consistency = mean ||A x - y|| / ||y||; seconds per image.",
        "",
        *markdown_table(
            ["problem", "method", "NFE", "PSNR (dB)", "SSIM", "consistency", "s / image"],
            [
                [
                    r["problem"],
                    f"**{r['method']}**" if r["own_task"] else r["method"],
                    r["nfe"],
                    f"{r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f}",
                    f"{r['ssim'][0]:.3f}",
                    f"{r['consistency'][0]:.1e}",
                    f"{r['seconds_per_image']:.4f}",
                ]
                for r in report["rows"]
            ],
        ),
    ]
    return "\n".join(lines) + "\n"
