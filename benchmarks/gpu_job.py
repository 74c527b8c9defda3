"""The one-call GPU job: train on from the shipped weights, export, evaluate, test on CUDA -- all into OUT.

    python benchmarks/gpu_job.py --out "$OUT"                      # on the lent GPU machine (~8 min)
    python benchmarks/gpu_job.py --out /tmp/gpu-dry --quick --budget-minutes 1   # CPU dry run (a test)

Run it on the device machine with ``PYTHONPATH=.`` from the repository root (no pip install there).
It never writes into the repository: new weights, cards and tables go to OUT, and the session that
called it checks them and commits what improved. Stages, each given what is left of the budget:

1. ``train``: both models continue from ``data/weights/<name>.pt`` (``python -m ddnm_edu.tools.train``, bf16
   autocast on CUDA, ``--batch`` images per step, ``--max-minutes`` each). Fashion-MNIST needs its training
   images: the Debian package, or the two ``train-*-idx*-ubyte.gz`` files in ``--fashion-dir`` (copy
   them into the working tree, untracked, before the run so that they travel with it).
2. ``export``: the new EMA weights, with sha256, into ``OUT/weights`` (``DDNM_EDU_WEIGHTS``).
3. ``cards``: model-card numbers for the new weights (held-out sets, 100 steps) into ``OUT/weights``.
4. ``compare``: ``evaluate compare --full`` on the new weights into ``OUT/benchmarks``.
5. ``tests``: ``tests/test_device.py`` and ``tests/test_sampling.py`` (CPU vs CUDA agree; no tensor left
   on the wrong device), log in ``OUT/tests.log``.

``OUT/job.json`` records the device, every stage's status and seconds, and what was skipped and why.
``--quick`` shrinks every stage to seconds so that the whole job can be tested on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("fashion-mnist-32", "emoji-32")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    ap.add_argument("--budget-minutes", type=float, default=8.0, help="wall budget for the whole job")
    ap.add_argument("--train-share", type=float, default=0.55, help="share of the budget for training")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--loss", default=None, help="training objective (default: the train script's)")
    ap.add_argument("--fashion-dir", type=Path, default=ROOT / "gpu_data" / "fashion-mnist")
    ap.add_argument("--quick", action="store_true", help="seconds per stage (CPU dry run)")
    ap.add_argument("--skip", action="append", default=[], help="stage to skip (train, export, cards, compare, tests)")
    args = ap.parse_args(argv)
    t0 = time.time()
    budget = args.budget_minutes * 60
    out = args.out.resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    weights = out / "weights"
    if weights.exists():
        shutil.rmtree(weights)
    shutil.copytree(ROOT / "data" / "weights", weights)  # start from the shipped registry
    env = dict(os.environ, PYTHONPATH=str(ROOT), DDNM_EDU_WEIGHTS=str(weights))
    if (args.fashion_dir / "train-images-idx3-ubyte.gz").exists():
        env["DDNM_EDU_FASHION_DIR"] = str(args.fashion_dir)

    import torch

    job: dict = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "quick": args.quick,
        "budget_minutes": args.budget_minutes,
        "stages": {},
    }

    def left() -> float:
        return budget - (time.time() - t0)

    def stage(name: str, fn) -> None:
        if name in args.skip:
            job["stages"][name] = {"status": "skipped (--skip)"}
            return
        s0 = time.time()
        try:
            info = fn() or {}
            job["stages"][name] = {"status": "ok", **info}
        except Exception as e:  # noqa: BLE001 - record and go on: later stages may still be useful
            job["stages"][name] = {"status": f"failed: {type(e).__name__}: {e}"}
        job["stages"][name]["seconds"] = round(time.time() - s0, 1)
        (out / "job.json").write_text(json.dumps(job, indent=2) + "\n")
        print(
            f"[gpu_job] {name}: {job['stages'][name]['status']} ({job['stages'][name]['seconds']} s, "
            f"{left() / 60:.1f} min left)",
            flush=True,
        )

    def run(cmd: list[str], log: Path, timeout: float) -> None:
        with open(log, "a") as f:
            subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True, timeout=max(timeout, 30)
            )

    trained: list[str] = []

    def train() -> dict:
        per_model = (0.15 if args.quick else args.train_share * args.budget_minutes) / len(MODELS)
        info = {}
        for name in MODELS:
            if (
                name.startswith("fashion")
                and "DDNM_EDU_FASHION_DIR" not in env
                and not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
            ):
                info[name] = "skipped: no Fashion-MNIST training images (see --fashion-dir)"
                continue
            cmd = [
                sys.executable,
                "-m",
                "ddnm_edu.tools.train",
                "--config",
                name,
                "--out",
                str(out / "runs" / name),
                "--init-from",
                str(ROOT / "data" / "weights" / f"{name}.pt"),
                "--max-minutes",
                str(per_model),
                "--batch",
                str(16 if args.quick else args.batch),
                "--lr",
                str(args.lr),
                "--warmup",
                "100",
                "--sample-every",
                "0",
                "--ckpt-minutes",
                "1",
                "--log-every",
                "5" if args.quick else "50",
            ]
            if args.quick:
                cmd += ["--n-train", "256", "--threads", "2"]
            if args.loss:
                cmd += ["--loss", args.loss]
            run(cmd, out / f"train-{name}.log", per_model * 60 + 300)
            ck = torch.load(out / "runs" / name / "checkpoint.pt", map_location="cpu", weights_only=True)
            info[name] = f"{int(ck['step'])} steps in {float(ck['wall_seconds']) / 60:.1f} min"
            trained.append(name)
        return info

    def export() -> dict:
        for name in trained:
            run(
                [
                    sys.executable,
                    "-m",
                    "ddnm_edu.tools.weights",
                    "export",
                    "--run",
                    str(out / "runs" / name),
                    "--name",
                    name,
                ],
                out / "export.log",
                120,
            )
        return {"exported": trained}

    def cards() -> dict:
        code = (
            "import sys; from pathlib import Path; from ddnm_edu.tools.evaluate import evaluate_model; "
            "n, steps, ns, nl = (4, 2, 4, 8) if sys.argv[2] == '1' else (None, 100, 64, None); "
            "evaluate_model(sys.argv[1], n, steps, 0, Path(sys.argv[3]), n_samples=ns, sample_steps=steps, "
            "n_loss=nl)"
        )
        for name in trained:
            run(
                [sys.executable, "-c", code, name, "1" if args.quick else "0", str(weights)], out / "cards.log", left()
            )
        return {"cards": trained}

    def compare() -> dict:
        code = (
            "import sys, time; from pathlib import Path; from ddnm_edu.tools import evaluate; t = time.time(); "
            "quick = sys.argv[1] == '1'; "
            "rows = (evaluate.run_compare(quick=False, n=2, steps=2, tasks=['sr4', 'inpaint-box12'], n_mean=2) "
            "if quick else evaluate.run_compare(quick=False)); "
            "evaluate.write_compare(rows, Path(sys.argv[2]), 'dryrun' if quick else 'full', time.time() - t)"
        )
        run(
            [sys.executable, "-c", code, "1" if args.quick else "0", str(out / "benchmarks")],
            out / "compare.log",
            left(),
        )
        return {}

    def tests() -> dict:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "tests/test_device.py",
        ] + ([] if args.quick else ["tests/test_sampling.py"])
        with open(out / "tests.log", "w") as f:
            r = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=max(left(), 60))
        if r.returncode != 0:
            raise RuntimeError(f"pytest exited {r.returncode}; see tests.log")
        return {}

    stage("train", train)
    stage("export", export)
    stage("cards", cards)
    stage("compare", compare)
    stage("tests", tests)
    job["seconds"] = round(time.time() - t0, 1)
    (out / "job.json").write_text(json.dumps(job, indent=2) + "\n")
    print(json.dumps(job, indent=2))
    return 0 if all(v["status"] == "ok" or v["status"].startswith("skipped") for v in job["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
