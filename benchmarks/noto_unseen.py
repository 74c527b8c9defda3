"""emoji-32 on Noto's held-out emoji whose base emoji has no Noto training image (``emoji.unseen_base``).

    python benchmarks/noto_unseen.py [--candidate data/candidates/emoji-32.pt] [--n 64 --steps 50]

Noto's held-out split (kept from the first model) is a random 10 % of glyphs, so most held-out people
have a skin-tone or gender sibling among the training images. This script measures the shipped weights
(and a candidate's) on the held-out images without such a sibling, next to all of Noto's held-out images:
the held-out denoising loss on every image of the subset, and ``evaluate.restoration_table`` (DDNM at
``--steps`` steps, mean of 4 on the box) on its first ``--n``. Writes ``benchmarks/noto-unseen.md``/``.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ddnm_edu import data, evaluate
from ddnm_edu.emoji import unseen_base
from ddnm_edu.pretrained import load_pretrained, registry
from ddnm_edu.schedule import NoiseSchedule

OUT = Path(__file__).resolve().parent


def _show(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(OUT.parent)) if path.is_relative_to(OUT.parent) else str(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, default=data.REPO_DATA / "candidates" / "emoji-32.pt",
                    help="other emoji-32 weights to measure beside the shipped ones ('' for none)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    idx = unseen_base("noto")
    x_all = data.load("emoji", "test", style="noto")
    x = x_all[torch.as_tensor(idx)]
    sched = NoiseSchedule.linear(1000)
    models = {"shipped": None, **({"candidate": args.candidate} if str(args.candidate) else {})}
    t0 = time.time()
    res = {}
    for tag, w in models.items():
        m = load_pretrained("emoji-32", "cpu", w)
        res[tag] = {"loss": evaluate.bucket_losses(m, sched, x, 0),
                    "restoration": evaluate.restoration_table(m, sched, x[: args.n], "emoji-32", args.steps, 0, n_mean=4)}
    info = {"n_heldout": len(x_all), "n_unseen": len(idx), "n": min(args.n, len(idx)), "steps": args.steps,
            "shipped_steps": registry()["emoji-32"]["steps"], "candidate": _show(args.candidate) if "candidate" in res else None,
            "seconds": round(time.time() - t0), "threads": torch.get_num_threads()}
    (args.out / "noto-unseen.json").write_text(json.dumps({"info": info, **res}, indent=2) + "\n")
    cols = list(res)
    lines = [f"# emoji-32 on Noto's held-out emoji with an unseen base emoji", "",
             f"`python benchmarks/noto_unseen.py --n {args.n} --steps {args.steps}` ({info['seconds'] / 60:.1f} min, "
             f"torch threads: {info['threads']}). {len(idx)} of Noto's {len(x_all)} held-out images have a base emoji "
             f"(`emoji.base_key`) with no Noto training image; the other {len(x_all) - len(idx)} have a sibling "
             "(another skin tone or gender) in training. Shipped: "
             f"{info['shipped_steps']:,} steps" + (f"; candidate: `{info['candidate']}`." if info["candidate"] else "."), "",
             f"## Held-out denoising loss ({len(idx)} images)", "", "| t | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for b in res["shipped"]["loss"]:
        lines.append(f"| {b} | " + " | ".join(f"{res[c]['loss'][b]:.4f}" for c in cols) + " |")
    lines += ["", f"## Restoration, first {info['n']} of them, DDNM {args.steps} steps (PSNR dB, mean)", "",
              "| task | method | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for task, methods in res["shipped"]["restoration"].items():
        for m, v in methods.items():
            if m.startswith("_"):
                continue
            lines.append(f"| {task} | {m} | " + " | ".join(f"{res[c]['restoration'][task][m]['psnr'][0]:.2f}"
                                                       for c in cols) + " |")
    (args.out / "noto-unseen.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
