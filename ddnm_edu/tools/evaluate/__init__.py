"""The evaluation programs, one module each: model cards (``cards``), the paper's comparison in miniature
(``compare``) and the specialists against DDNM (``specialist``); ``common`` holds the shared scores.

    python -m ddnm_edu.tools.evaluate models | compare | specialist   (see --help)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ...errors import DDNMInputError
from ..command import CommandParser
from ...pretrained import WEIGHTS_DIR, available
from .cards import (
    BUCKETS,
    bucket_losses,
    evaluate_model,
    nearest_neighbours,
    posterior_section,
    refresh_posterior_section,
    restoration_table,
    targets,
    tasks_for,
    write_card,
)
from .common import BENCH_DIR, markdown_table, psnr_capped, score_cells, scores, stats
from .compare import (
    COMPARE_TASKS,
    ZERO_SHOT_PEERS,
    compare_tasks,
    headline,
    headline_markdown,
    noisy_measurement,
    read_compare,
    run_compare,
    write_compare,
)
from .specialist import SPECIALISTS, evaluate_specialist, run_specialist, specialist_markdown, specialist_problems

__all__ = [
    "BENCH_DIR",
    "BUCKETS",
    "COMPARE_TASKS",
    "SPECIALISTS",
    "ZERO_SHOT_PEERS",
    "bucket_losses",
    "compare_tasks",
    "evaluate_model",
    "evaluate_specialist",
    "headline",
    "headline_markdown",
    "main",
    "markdown_table",
    "nearest_neighbours",
    "posterior_section",
    "refresh_posterior_section",
    "score_cells",
    "noisy_measurement",
    "psnr_capped",
    "read_compare",
    "restoration_table",
    "run_compare",
    "run_specialist",
    "scores",
    "specialist_markdown",
    "specialist_problems",
    "stats",
    "targets",
    "tasks_for",
    "write_card",
    "write_compare",
]


def main(argv=None) -> None:
    ap = CommandParser(prog="python -m ddnm_edu.tools.evaluate", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("models", help="model-card numbers for the shipped models")
    m.add_argument("--name", action="append", help="model name (default: all shipped)")
    m.add_argument("--n", type=int, default=None, help="held-out images (default 256 fashion / all emoji)")
    m.add_argument("--steps", type=int, default=100)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    m.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="measure this state dict (e.g. runs/emoji-32/ema.pt) instead of the shipped file; "
        "use with one --name and an --out outside data/weights",
    )
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
