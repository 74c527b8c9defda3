"""Execution time of every book chapter, top to bottom, in a fresh kernel each.

    python benchmarks/book_times.py            # -> benchmarks/book-times.md and .json

Each notebook runs once with nbclient (the engine Jupyter Book and nbval use), in its own kernel,
with the working directory set to ``book/`` as in the build. Nothing is written back to the
notebooks. The numbers are wall-clock seconds on whatever machine runs the script; the Markdown
states which. The kernel start-up (~1-2 s) is included, as a reader would feel it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ddnm_edu.tools.evaluate import markdown_table

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_one(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}})
    t0 = time.perf_counter()
    client.execute()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    ap.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    times = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        times[path.name] = round(run_one(path, args.timeout), 1)
        print(f"{path.name:32s} {times[path.name]:7.1f} s", flush=True)
    total = round(sum(times.values()), 1)
    import torch

    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "scale": os.environ.get("DDNM_EDU_SCALE", "cpu"),
    }
    (args.out / "book-times.json").write_text(
        json.dumps({"seconds": times, "total": total, "machine": machine}, indent=2) + "\n"
    )
    lines = [
        "# Book execution time",
        "",
        "`python benchmarks/book_times.py` — each chapter executed top to bottom in a fresh kernel "
        f"(nbclient), on {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
        f"Python {machine['python']}, DDNM_EDU_SCALE={machine['scale']}.",
        "",
        *markdown_table(
            ["chapter", "seconds"], [[k, f"{v:.1f}"] for k, v in times.items()] + [["**total**", f"**{total:.1f}**"]]
        ),
    ]
    (args.out / "book-times.md").write_text("\n".join(lines) + "\n")
    print(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
