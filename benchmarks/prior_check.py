"""Is a training run better than the shipped model? Held-out numbers, side by side, same seeds.

    python benchmarks/prior_check.py --name emoji-32 --run /work/runs/emoji-broad [--n 32 --steps 50]

``--run`` is a training run folder (its EMA weights ``ema.pt`` are measured) or a weights file such as
``data/candidates/emoji-32.pt``. For the shipped weights and those: the held-out denoising loss per
timestep bucket (every held-out image of each set) and the restoration table of
``evaluate.restoration_table`` on the first ``--n`` held-out images of each set (DDNM at ``--steps``
steps, the mean of 4 samples on the box), with ``evaluate.targets``. The sets are ``heldout_sets``:
Fashion-MNIST's test split, or each emoji style's held-out split plus ``noto-unseen``, the Noto held-out
images whose base emoji has no Noto training image (``emoji.unseen_base``; most of Noto's held-out
people have a skin-tone or gender sibling in training, which flatters any model on the full split).
Writes ``benchmarks/prior-check-<name>.md`` and ``.json``. Export a run only when it wins here.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ddnm_edu import data
from ddnm_edu.tools import evaluate
from ddnm_edu.tools.evaluate import markdown_table
from ddnm_edu.tools.emoji import unseen_base
from ddnm_edu.pretrained import init_record, load_pretrained, registry
from ddnm_edu.schedule import NoiseSchedule

OUT = Path(__file__).resolve().parent


def heldout_sets(name: str) -> dict[str, torch.Tensor]:
    """The held-out sets a model ``name`` is checked on: set name -> images in [-1, 1], (N, C, 32, 32)."""
    if not name.startswith("emoji"):
        return {"fashion-mnist": data.load("fashion-mnist", "test")}
    sets = {style: data.load("emoji", "test", style=style) for style in data.EMOJI_STYLES}
    sets["noto-unseen"] = sets["noto"][torch.as_tensor(unseen_base("noto"))]
    return sets


def measure(
    name: str,
    weights: Path | None,
    sets: dict[str, torch.Tensor],
    n: int,
    steps: int,
    seed: int = 0,
    n_loss: int | None = None,
) -> dict:
    """Held-out loss buckets, restoration tables and targets of the weights (None: the shipped ones) on
    ``sets`` (``heldout_sets(name)``)."""
    model = load_pretrained(name, "cpu", weights)
    sched = NoiseSchedule.linear(1000)
    emoji = name.startswith("emoji")
    out: dict = {"loss": {}, "restoration": {}, "sizes": {}}
    for key, x in sets.items():
        out["sizes"][key] = len(x)
        out["loss"][key] = evaluate.bucket_losses(model, sched, x[:n_loss], seed)
        out["restoration"][key] = evaluate.restoration_table(
            model, sched, x[:n], name, steps, seed, n_mean=4 if emoji else 0
        )
    out["targets"] = evaluate.targets(name, out["restoration"] if emoji else out["restoration"]["fashion-mnist"])
    return out


def _show(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(OUT.parent)) if path.is_relative_to(OUT.parent) else str(path)


def _started_from(info: dict) -> str:
    """What 'on top of' says: the steps recorded, or why none are."""
    if info["run_init_steps"]:
        return f"{info['run_init_steps']:,}"
    if info.get("run_init_from") == "":
        return "none (trained from scratch)"
    return (
        "weights whose steps are not recorded (a checkpoint older than the init_from field, or --init-from "
        "a file without a record)"
    )


def _run_training(info: dict) -> str:
    """What the header says of the measured weights' training."""
    if info.get("run_interpolated"):
        return "no optimiser steps of its own (a weight interpolation of two recorded files; its record is below)"
    return f"{info['run_steps']:,} steps on top of " + _started_from(info)


def run_info(run: Path) -> tuple[Path, dict]:
    """The weights file of ``--run`` and its training: steps of the run, steps of what it started from."""
    if run.is_dir():
        ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        return run / "ema.pt", {
            "run_steps": int(ck["step"]),
            "run_init_steps": int(ck.get("init_steps", 0)),
            "run_init_from": ck.get("init_from"),
        }
    rec = init_record(run)
    if rec is None:
        raise SystemExit(
            f"{run}: no weights.json beside it or in the registry records its sha256; "
            "pass the run folder that trained it instead."
        )
    before = int(rec.get("steps_before_this_run", 0))
    return run, {
        "run_steps": int(rec["steps"]) - before,
        "run_init_steps": before,
        "run_init_from": None,
        "run_status": rec.get("status"),
        "run_interpolated": "interpolated" in rec,
    }


def report(info: dict, res: dict) -> str:
    """The markdown of a prior check, from what ``main`` measured (also re-renders a saved JSON)."""
    lines = [
        f"# {info['name']}: shipped weights vs {'the run' if info.get('run_is_dir') else 'the weights'} {info['run']}",
        "",
        f"`python benchmarks/prior_check.py --name {info['name']} --run {info['run']} --n {info['n']} "
        f"--steps {info['steps']}` ({info['seconds'] / 60:.1f} min, torch threads: {info['threads']}). "
        f"Shipped: {info['shipped_steps']:,} steps; run: " + _run_training(info) + ".",
        "",
        *([f"The measured weights, as their record says: {info['run_status']}", ""] if info.get("run_status") else []),
        *(
            [
                f"`noto-unseen`: the {res['run']['sizes']['noto-unseen']} of Noto's {res['run']['sizes']['noto']} "
                "held-out images whose base emoji has no Noto training image (`emoji.unseen_base`); the others have "
                "a sibling (another skin tone or gender) among the training images, which flatters every model.",
                "",
            ]
            if "noto-unseen" in res["run"]["sizes"]
            else []
        ),
        f"## Held-out denoising loss ({info.get('n_loss') or 'all'} held-out images per set; lower is better)",
        "",
        *markdown_table(
            ["set", "t", "shipped", "run"],
            [
                [key, b, f"{v:.4f}", f"{res['run']['loss'][key][b]:.4f}"]
                for key, buckets in res["shipped"]["loss"].items()
                for b, v in buckets.items()
            ],
        ),
    ]
    rows = []
    for key, table in res["shipped"]["restoration"].items():
        for task, methods in table.items():
            base = methods[methods["_baseline"]]["psnr"][0]
            rows += [
                [
                    key,
                    task,
                    f"{m} (baseline {methods['_baseline']} {base:.2f})",
                    f"{v['psnr'][0]:.2f}",
                    f"{res['run']['restoration'][key][task][m]['psnr'][0]:.2f}",
                ]
                for m, v in methods.items()
                if m.startswith("DDNM")
            ]
    lines += [
        "",
        f"## Restoration, first {info['n']} held-out images per set, DDNM {info['steps']} steps (PSNR dB, mean)",
        "",
        *markdown_table(["set", "task", "method", "shipped", "run"], rows),
    ]
    met = lambda t: f"{'yes' if t['met'] else 'no'} ({t['value']:.2f})"  # noqa: E731
    lines += [
        "",
        "## Targets (`evaluate.targets`, at these settings)",
        "",
        *markdown_table(
            ["set", "target", "shipped", "run"],
            [
                [a["style"], a["target"], met(a), met(b)]
                for a, b in zip(res["shipped"]["targets"], res["run"]["targets"])
            ],
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, choices=sorted(registry()))
    ap.add_argument(
        "--run",
        type=Path,
        required=True,
        help="a training run folder (its ema.pt is measured) or a weights file that a "
        "weights.json records (data/candidates/emoji-32.pt)",
    )
    ap.add_argument("--n", type=int, default=32, help="held-out images per set for the restoration table")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--n-loss", type=int, default=None, help="held-out images for the loss (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    weights, steps_info = run_info(args.run)
    shipped = registry()[args.name]
    t0 = time.time()
    sets = heldout_sets(args.name)
    res = {
        tag: measure(args.name, w, sets, args.n, args.steps, n_loss=args.n_loss)
        for tag, w in (("shipped", None), ("run", weights))
    }
    info = {
        "name": args.name,
        "run": _show(args.run),
        **steps_info,
        "shipped_steps": shipped["steps"],
        "n": args.n,
        "steps": args.steps,
        "seconds": round(time.time() - t0),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "run_is_dir": args.run.is_dir(),
        "n_loss": args.n_loss,
    }
    (args.out / f"prior-check-{args.name}.json").write_text(json.dumps({"info": info, **res}, indent=2) + "\n")
    text = report(info, res)
    (args.out / f"prior-check-{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
