"""The shipped pretrained UNets: ``load_pretrained(name, device)``, checked against a recorded sha256.

Weights live in ``data/weights/<name>.pt`` (the EMA weights written by ``ddnm_edu.train``), and
``data/weights/weights.json`` records, for each, its sha256 and how it was made. Nothing is
downloaded: a missing or altered file is an error that says what to do.

Export a training run's EMA weights into the repository with::

    python -m ddnm_edu.pretrained export --run runs/fashion-mnist-32 --name fashion-mnist-32

``interpolate`` mixes two recorded weights files (WiSE-FT); data/candidates/README.md says what that gave.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from .data import REPO_DATA, sha256
from .errors import CommandParser, DDNMInputError, run_command
from .restormer import Restormer, RestormerConfig
from .unet import UNet, UNetConfig, count_parameters


def arch_key(rec: dict) -> str:
    """'unet' or 'restormer': the key under which a training config, a checkpoint or a weights.json record
    holds the network's sizes (and so which kind of network it is)."""
    return "restormer" if "restormer" in rec else "unet"


def build(rec: dict) -> torch.nn.Module:
    """An untrained network of the architecture a record (or checkpoint) describes: its ``unet`` or
    ``restormer`` sizes."""
    if arch_key(rec) == "restormer":
        return Restormer(RestormerConfig.from_dict(rec["restormer"]))
    return UNet(UNetConfig.from_dict(rec["unet"]))

# DDNM_EDU_WEIGHTS: another folder laid out like data/weights (the GPU job writes new weights there)
WEIGHTS_DIR = Path(os.environ["DDNM_EDU_WEIGHTS"]) if os.environ.get("DDNM_EDU_WEIGHTS") else REPO_DATA / "weights"
REGISTRY = WEIGHTS_DIR / "weights.json"


def registry() -> dict:
    """name -> record (file, sha256, unet config, training facts)."""
    if not REGISTRY.exists():
        return {}
    return json.loads(REGISTRY.read_text())


def init_record(path: Path) -> dict | None:
    """The training record of the weights file ``path``: the entry with the file's sha256 in the
    ``weights.json`` beside it (``data/candidates/``, a GPU job's ``OUT/weights/``), else in the shipped
    registry; None when neither records it. A file's name says nothing (every emoji run exports an
    ``emoji-32.pt``)."""
    digest = sha256(path)
    side = path.parent / "weights.json"
    for recs in ((json.loads(side.read_text()) if side.exists() else {}), registry()):
        rec = next((r for r in recs.values() if r.get("sha256") == digest), None)
        if rec is not None:
            return rec
    return None


def available(kind: str | None = None) -> list[str]:
    """Names of the shipped models; ``kind="diffusion"`` (epsilon-UNets, the priors DDNM uses) or
    ``kind="specialist"`` (supervised Restormers) filters them."""
    reg = registry()
    if kind not in (None, "diffusion", "specialist"):
        raise ValueError(f"unknown kind {kind!r}; use 'diffusion' or 'specialist'.")
    return sorted(n for n, r in reg.items() if kind is None or (arch_key(r) == "unet") == (kind == "diffusion"))


def _record(name: str) -> dict:
    reg = registry()
    if name not in reg:
        raise DDNMInputError(f"unknown model {name!r}; available: {', '.join(sorted(reg)) or 'none shipped'}.")
    return reg[name]


def load_state_dict_checked(path: Path, expected_sha256: str | None = None) -> dict:
    """torch.load(weights_only=True) after checking the file's sha256 (when one is recorded)."""
    path = Path(path)
    if not path.exists():
        raise DDNMInputError(f"weights file {path} not found; restore it with `git checkout -- {path}` "
                             "or re-export it from a training run (python -m ddnm_edu.pretrained export).")
    if expected_sha256 is None:
        for rec in registry().values():
            if (WEIGHTS_DIR / rec["file"]).resolve() == path.resolve():
                expected_sha256 = rec["sha256"]
    if expected_sha256 is not None:
        got = sha256(path)
        if got != expected_sha256:
            raise DDNMInputError(f"weights file {path} is corrupt or was changed: sha256 {got[:12]}... but "
                                 f"{expected_sha256[:12]}... is recorded in {REGISTRY.name}. Restore it with "
                                 f"`git checkout -- {path}` (or re-export and re-record it).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DDNMInputError(f"could not read weights file {path} ({type(e).__name__}); restore it with "
                             f"`git checkout -- {path}`.") from e


def load_pretrained(name: str, device: str | torch.device = "cpu", weights: Path | None = None) -> torch.nn.Module:
    """The pretrained network ``name`` on ``device``, in eval mode: an epsilon-UNet ('fashion-mnist-32',
    'emoji-32') or a supervised Restormer specialist ('restormer-sr4', 'restormer-denoise').

    ``weights``: another state dict of the same architecture (e.g. a training run's ``ema.pt``),
    to measure a checkpoint before it is exported; no sha256 is recorded for it.
    """
    rec = _record(name)
    sd = (load_state_dict_checked(WEIGHTS_DIR / rec["file"], rec["sha256"]) if weights is None
          else load_state_dict_checked(Path(weights)))
    model = build(rec)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise DDNMInputError(f"weights for {name!r} do not fit its recorded architecture ({e.args[0].splitlines()[0]}); "
                             "re-export them from the run that trained them.") from None
    model = model.to(device).eval().requires_grad_(False)
    # The fastest memory format, chosen here once: the samplers feed x_t in ``model.memory_format``.
    # On the CPU channels_last is ~25 % faster per call (benchmarks/speed.md); on CUDA it was not measured,
    # so the default layout is kept there.
    model.memory_format = torch.channels_last if torch.device(device).type == "cpu" else None
    if model.memory_format is not None:
        model = model.to(memory_format=model.memory_format)
    return model


def export(run: Path, name: str, init_steps: int | None = None, init_minutes: float | None = None) -> dict:
    """Copy a run's EMA weights to data/weights/<name>.pt and record them in weights.json.

    Steps and wall time are totals: those of the weights the run started from (``--init-from``,
    recorded in its checkpoint; ``init_steps`` / ``init_minutes`` override it) plus the run's own.
    """
    run = Path(run)
    if not (run / "checkpoint.pt").exists():
        raise DDNMInputError(f"no checkpoint.pt in {run}; give the --out folder of a training run "
                             "(python -m ddnm_edu.train).")
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
        "file": dst.name, "sha256": sha256(dst), arch: ck[arch], "params": count_parameters(model),
        **({"task": meta["task"], "loss": meta.get("loss")} if meta.get("task") else {}),
        "dataset": meta.get("config", name), "steps": init_steps + int(ck["step"]), "batch": meta.get("batch"),
        "lr": meta.get("lr"), "ema": meta.get("ema"),
        "train_wall_minutes": round(init_minutes + float(ck["wall_seconds"]) / 60, 1),
        **({"steps_before_this_run": init_steps} if init_steps else {}),
        "hardware": meta.get("hardware", f"{meta.get('device')} ({meta.get('threads')} threads)")
        + (f", {meta['world_size']} processes (DDP)" if meta.get("world_size", 1) > 1 else ""),
        "torch": meta.get("torch"),
    }
    log = run / "loss.csv"
    if log.exists():
        import csv

        shutil.copy(log, WEIGHTS_DIR / f"{name}-loss.csv")  # the learning curve travels with the weights (ch10)
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
            raise DDNMInputError(f"{f}: missing, or no weights.json beside it or in the registry records its "
                                 "sha256; interpolate recorded weights only.")
    ra, rb = recs
    if ra[arch_key(ra)] != rb[arch_key(rb)]:
        raise DDNMInputError(f"{a} and {b} have different architectures; interpolation needs one architecture.")
    sa, sb = (load_state_dict_checked(Path(f), r["sha256"]) for f, r in ((a, ra), (b, rb)))
    sd = {k: torch.lerp(sa[k].float(), sb[k].float(), alpha).to(sa[k].dtype).contiguous() for k in sa}  # (1-alpha) a + alpha b
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{name}.pt"
    torch.save(sd, dst)
    rec = {k: v for k, v in rb.items() if k not in ("file", "sha256", "final_loss", "status")}
    rec.update(file=dst.name, sha256=sha256(dst), interpolated={
        "alpha": alpha, "a": {"file": str(a), "sha256": ra["sha256"], "steps": ra["steps"]},
        "b": {"file": str(b), "sha256": rb["sha256"], "steps": rb["steps"]}})
    rec["status"] = (f"weight interpolation (WiSE-FT, Wortsman et al. 2022), no further training: "
                     f"{1 - alpha:g} x {a} ({ra['steps']:,} steps, sha256 {ra['sha256'][:8]}) + {alpha:g} x "
                     f"{b} ({rb['steps']:,} steps, sha256 {rb['sha256'][:8]}).")
    side = out / "weights.json"
    reg = json.loads(side.read_text()) if side.exists() else {}
    reg[name] = rec
    side.write_text(json.dumps(reg, indent=2) + "\n")
    return rec


def main(argv=None) -> None:
    ap = CommandParser(prog="python -m ddnm_edu.pretrained", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="ship a run's EMA weights")
    e.add_argument("--run", type=Path, required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--init-steps", type=int, default=None,
                   help="steps of the weights the run started from (default: as its checkpoint records)")
    e.add_argument("--init-minutes", type=float, default=None, help="their training wall time")
    i = sub.add_parser("interpolate", help="(1 - alpha) a + alpha b of two recorded weights files (WiSE-FT)")
    i.add_argument("--a", type=Path, required=True, help="weights file (e.g. data/weights/emoji-32.pt)")
    i.add_argument("--b", type=Path, required=True, help="weights file fine-tuned from a (e.g. data/candidates/emoji-32.pt)")
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
    raise SystemExit(run_command("python -m ddnm_edu.pretrained", main))
