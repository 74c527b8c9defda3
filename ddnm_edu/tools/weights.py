"""Ship and mix weights: ``python -m ddnm_edu.tools.weights export | interpolate | list``.

``export`` copies a training run's EMA weights into ``data/weights/`` (or ``DDNM_EDU_WEIGHTS``) and records
their sha256 and training facts in ``weights.json``; ``interpolate`` mixes two recorded weights files
(WiSE-FT; data/candidates/README.md says what that gave). Loading is ``ddnm_edu.pretrained``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..data import sha256
from ..errors import DDNMInputError
from .command import CommandParser, run_command
from ..pretrained import REGISTRY, WEIGHTS_DIR, arch_key, build, init_record, load_state_dict_checked, registry
from ..unet import count_parameters


def export(run: Path, name: str, init_steps: int | None = None, init_minutes: float | None = None) -> dict:
    """Copy a run's EMA weights to data/weights/<name>.pt and record them in weights.json.

    Steps and wall time are totals: those of the weights the run started from (``--init-from``,
    recorded in its checkpoint; ``init_steps`` / ``init_minutes`` override it) plus the run's own.
    """
    run = Path(run)
    if not (run / "checkpoint.pt").exists():
        raise DDNMInputError(
            f"no checkpoint.pt in {run}; give the --out folder of a training run (python -m ddnm_edu.tools.train)."
        )
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    init_steps = int(ck.get("init_steps", 0)) if init_steps is None else init_steps
    init_minutes = float(ck.get("init_wall_seconds", 0.0)) / 60 if init_minutes is None else init_minutes
    meta = json.loads((run / "run.json").read_text())
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    dst = WEIGHTS_DIR / f"{name}.pt"
    sd = {k: v.contiguous() for k, v in ck["ema"].items()}
    torch.save(sd, dst)
    model = build(ck)
    model.load_state_dict(sd)
    arch = arch_key(ck)
    rec = {
        "file": dst.name,
        "sha256": sha256(dst),
        arch: ck[arch],
        "params": count_parameters(model),
        **({"task": meta["task"], "loss": meta.get("loss")} if meta.get("task") else {}),
        "dataset": meta.get("config", name),
        "steps": init_steps + int(ck["step"]),
        "batch": meta.get("batch"),
        "lr": meta.get("lr"),
        "ema": meta.get("ema"),
        "train_wall_minutes": round(init_minutes + float(ck["wall_seconds"]) / 60, 1),
        **({"steps_before_this_run": init_steps} if init_steps else {}),
        "hardware": meta.get("hardware", f"{meta.get('device')} ({meta.get('threads')} threads)")
        + (f", {meta['world_size']} processes (DDP)" if meta.get("world_size", 1) > 1 else ""),
        "torch": meta.get("torch"),
    }
    log = run / "loss.csv"
    if log.exists():
        import csv

        shutil.copy(log, WEIGHTS_DIR / f"{name}-loss.csv")  # the learning curve travels with the weights (ch13)
        # final loss: the mean of the values logged over the last 500 steps, whatever --log-every was
        rows = list(csv.DictReader(open(log)))
        rows = [r for r in rows if int(r["step"]) > int(rows[-1]["step"]) - 500] if rows else rows
        if rows:
            rec["final_loss"] = round(sum(float(r["loss"]) for r in rows) / len(rows), 4)
    reg = registry()
    reg[name] = rec
    REGISTRY.write_text(json.dumps(reg, indent=2) + "\n")
    return rec


def interpolate(a: Path, b: Path, alpha: float, out: Path, name: str) -> dict:
    """Weight interpolation of two recorded weights files of one architecture, as in WiSE-FT (Wortsman et
    al., "Robust fine-tuning of zero-shot models", CVPR 2022): theta = (1 - alpha) theta_a + alpha theta_b.

    Meant for ``b`` fine-tuned from ``a`` (the emoji candidate continues the shipped Noto-only weights on
    three styles): the mix keeps part of what each knows, with no further training. Writes
    ``out/<name>.pt`` and its record in ``out/weights.json``; the record keeps b's training facts (the steps
    of its lineage) and names both parents and alpha. Both files need a record (``init_record``).
    """
    if not 0.0 <= alpha <= 1.0:
        raise DDNMInputError(f"alpha must be in [0, 1] (got {alpha}); 0 gives a, 1 gives b.")
    recs = [init_record(Path(f)) if Path(f).exists() else None for f in (a, b)]
    for f, r in zip((a, b), recs):
        if r is None:
            raise DDNMInputError(
                f"{f}: missing, or no weights.json beside it or in the registry records its "
                "sha256; interpolate recorded weights only."
            )
    ra, rb = recs
    if ra[arch_key(ra)] != rb[arch_key(rb)]:
        raise DDNMInputError(f"{a} and {b} have different architectures; interpolation needs one architecture.")
    sa, sb = (load_state_dict_checked(Path(f), r["sha256"]) for f, r in ((a, ra), (b, rb)))
    sd = {
        k: torch.lerp(sa[k].float(), sb[k].float(), alpha).to(sa[k].dtype).contiguous() for k in sa
    }  # (1-alpha) a + alpha b
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{name}.pt"
    torch.save(sd, dst)
    rec = {k: v for k, v in rb.items() if k not in ("file", "sha256", "final_loss", "status")}
    rec.update(
        file=dst.name,
        sha256=sha256(dst),
        interpolated={
            "alpha": alpha,
            "a": {"file": str(a), "sha256": ra["sha256"], "steps": ra["steps"]},
            "b": {"file": str(b), "sha256": rb["sha256"], "steps": rb["steps"]},
        },
    )
    rec["status"] = (
        f"weight interpolation (WiSE-FT, Wortsman et al. 2022), no further training: "
        f"{1 - alpha:g} x {a} ({ra['steps']:,} steps, sha256 {ra['sha256'][:8]}) + {alpha:g} x "
        f"{b} ({rb['steps']:,} steps, sha256 {rb['sha256'][:8]})."
    )
    side = out / "weights.json"
    reg = json.loads(side.read_text()) if side.exists() else {}
    reg[name] = rec
    side.write_text(json.dumps(reg, indent=2) + "\n")
    return rec


def main(argv=None) -> None:
    ap = CommandParser(prog="python -m ddnm_edu.tools.weights", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="ship a run's EMA weights")
    e.add_argument("--run", type=Path, required=True)
    e.add_argument("--name", required=True)
    e.add_argument(
        "--init-steps",
        type=int,
        default=None,
        help="steps of the weights the run started from (default: as its checkpoint records)",
    )
    e.add_argument("--init-minutes", type=float, default=None, help="their training wall time")
    i = sub.add_parser("interpolate", help="(1 - alpha) a + alpha b of two recorded weights files (WiSE-FT)")
    i.add_argument("--a", type=Path, required=True, help="weights file (e.g. data/weights/emoji-32.pt)")
    i.add_argument(
        "--b", type=Path, required=True, help="weights file fine-tuned from a (e.g. data/candidates/emoji-32.pt)"
    )
    i.add_argument("--alpha", type=float, required=True)
    i.add_argument("--name", required=True)
    i.add_argument("--out", type=Path, required=True, help="folder for <name>.pt and its weights.json record")
    sub.add_parser("list", help="list the shipped models")
    args = ap.parse_args(argv)
    if args.cmd == "interpolate":
        print(json.dumps(interpolate(args.a, args.b, args.alpha, args.out, args.name), indent=2))
    elif args.cmd == "export":
        print(json.dumps(export(args.run, args.name, args.init_steps, args.init_minutes), indent=2))
    else:
        print(json.dumps(registry(), indent=2))


if __name__ == "__main__":
    raise SystemExit(run_command("python -m ddnm_edu.tools.weights", main))
