"""The shipped pretrained UNets: ``load_pretrained(name, device)``, checked against a recorded sha256.

Weights live in ``data/weights/<name>.pt`` (the EMA weights written by ``ddnm_edu.tools.train``), and
``data/weights/weights.json`` records, for each, its sha256 and how it was made. Nothing is
downloaded: a missing or altered file is an error that says what to do.

Export a training run's EMA weights into the repository with ``ddnm_edu.tools.weights``::

    python -m ddnm_edu.tools.weights export --run runs/fashion-mnist-32 --name fashion-mnist-32
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .data import ASSETS, sha256
from .errors import DDNMInputError
from .restormer import Restormer, RestormerConfig
from .unet import UNet, UNetConfig


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
WEIGHTS_DIR = Path(os.environ["DDNM_EDU_WEIGHTS"]) if os.environ.get("DDNM_EDU_WEIGHTS") else ASSETS / "weights"
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
        raise DDNMInputError(
            f"weights file {path} not found; restore it with `git checkout -- {path}` "
            "or re-export it from a training run (python -m ddnm_edu.tools.weights export)."
        )
    if expected_sha256 is None:
        for rec in registry().values():
            if (WEIGHTS_DIR / rec["file"]).resolve() == path.resolve():
                expected_sha256 = rec["sha256"]
    if expected_sha256 is not None:
        got = sha256(path)
        if got != expected_sha256:
            raise DDNMInputError(
                f"weights file {path} is corrupt or was changed: sha256 {got[:12]}... but "
                f"{expected_sha256[:12]}... is recorded in {REGISTRY.name}. Restore it with "
                f"`git checkout -- {path}` (or re-export and re-record it)."
            )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DDNMInputError(
            f"could not read weights file {path} ({type(e).__name__}); restore it with `git checkout -- {path}`."
        ) from e


def load_pretrained(name: str, device: str | torch.device = "cpu", weights: Path | None = None) -> torch.nn.Module:
    """The pretrained network ``name`` on ``device``, in eval mode: an epsilon-UNet ('fashion-mnist-32',
    'emoji-32') or a supervised Restormer specialist ('restormer-sr4', 'restormer-denoise').

    ``weights``: another state dict of the same architecture (e.g. a training run's ``ema.pt``),
    to measure a checkpoint before it is exported; no sha256 is recorded for it.
    """
    rec = _record(name)
    sd = (
        load_state_dict_checked(WEIGHTS_DIR / rec["file"], rec["sha256"])
        if weights is None
        else load_state_dict_checked(Path(weights))
    )
    model = build(rec)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise DDNMInputError(
            f"weights for {name!r} do not fit its recorded architecture ({e.args[0].splitlines()[0]}); "
            "re-export them from the run that trained them."
        ) from None
    model = model.to(device).eval().requires_grad_(False)
    # On the CPU the weights are stored channels_last: ~25 % faster per call (benchmarks/speed.md), and
    # the first convolution converts x_t itself (feeding x_t already converted measured no faster).
    # On CUDA it was not measured, so the default layout is kept there.
    if torch.device(device).type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model
