"""The training script: a few real steps, resuming, and two processes with DDP (gloo, CPU)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # commands, training, evaluation: make test runs it, make check skips it

CANDIDATES = Path(__file__).resolve().parents[1] / "data" / "candidates"  # trained, not shipped

ROOT = Path(__file__).resolve().parent.parent
# The first 256 Fashion-MNIST training images, in the official idx format (tests/data/fashion-mnist/README.md):
# the Fashion-MNIST runs here read them through the same loader, not the Debian package.
FASHION_SLICE = ROOT / "tests" / "data" / "fashion-mnist"


def _env():
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        TQDM_DISABLE="1",
        DDNM_EDU_FASHION_DIR=str(FASHION_SLICE),
    )
    env.pop("WORLD_SIZE", None)
    return env


def _ckpt(out):
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)


def _export_to_copy(tmp_path, run, name, *extra) -> tuple[dict, dict]:
    """Export ``run`` as ``name`` into a copy of the registry (not the repository's): (record, env)."""
    import shutil

    from ddnm_edu.pretrained import WEIGHTS_DIR

    weights = tmp_path / "weights"
    weights.mkdir(exist_ok=True)
    if not (weights / "weights.json").exists():
        shutil.copy(WEIGHTS_DIR / "weights.json", weights)
    env = dict(_env(), DDNM_EDU_WEIGHTS=str(weights))
    subprocess.run(
        [sys.executable, "-m", "ddnm_edu.tools.weights", "export", "--run", str(run), "--name", name, *extra],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    return json.loads((weights / "weights.json").read_text())[name], env


def test_train_resumes_from_its_checkpoint(tmp_path):
    args = [
        sys.executable,
        "-m",
        "ddnm_edu.tools.train",
        "--config",
        "emoji-32",
        "--out",
        str(tmp_path),
        "--batch",
        "4",
        "--n-train",
        "32",
        "--sample-every",
        "0",
        "--log-every",
        "1",
        "--threads",
        "1",
    ]
    subprocess.run(args + ["--steps", "2"], check=True, env=_env(), cwd=ROOT, capture_output=True)
    first = _ckpt(tmp_path)
    assert first["step"] == 2
    r = subprocess.run(args + ["--steps", "4"], check=True, env=_env(), cwd=ROOT, capture_output=True, text=True)
    assert "resumed from" in r.stdout and "at step 2" in r.stdout
    second = _ckpt(tmp_path)
    assert second["step"] == 4
    rows = list(csv.DictReader(open(tmp_path / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(0 < float(r["loss"]) < 5 for r in rows)
    # the weights moved, and the EMA lags behind the raw weights
    k = "out.2.weight"
    assert not torch.equal(first["model"][k], second["model"][k])
    assert not torch.equal(second["ema"][k], second["model"][k])


def test_fine_tune_counts_the_steps_of_the_weights_it_started_from(tmp_path):
    """--init-from shipped weights: the checkpoint records their steps, and export reports the total."""
    from ddnm_edu.pretrained import WEIGHTS_DIR, registry

    shipped = registry()["emoji-32"]
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "ddnm_edu.tools.train",
        "--config",
        "emoji-32",
        "--out",
        str(run),
        "--batch",
        "4",
        "--n-train",
        "32",
        "--sample-every",
        "0",
        "--log-every",
        "1",
        "--threads",
        "1",
        "--steps",
        "2",
        "--init-from",
        str(WEIGHTS_DIR / shipped["file"]),
    ]
    subprocess.run(args, check=True, env=_env(), cwd=ROOT, capture_output=True)
    subprocess.run(args[:-2] + ["--steps", "3"], check=True, env=_env(), cwd=ROOT, capture_output=True)  # resume
    assert _ckpt(run)["init_steps"] == shipped["steps"] and _ckpt(run)["step"] == 3
    assert _ckpt(run)["init_from"] == str(WEIGHTS_DIR / shipped["file"])  # kept across the resume
    rec, _ = _export_to_copy(tmp_path, run, "emoji-32")
    assert rec["steps"] == shipped["steps"] + 3 and rec["steps_before_this_run"] == shipped["steps"]
    assert rec["train_wall_minutes"] >= shipped["train_wall_minutes"]
    assert _export_to_copy(tmp_path, run, "emoji-32", "--init-steps", "10")[0]["steps"] == 13
    assert "processes" not in rec["hardware"]  # one process


def test_final_loss_is_the_mean_over_the_last_500_steps_whatever_the_log_interval(tmp_path):
    """export's final_loss (the model card's 'mean of the last 500 steps') reads the steps, not a row count."""
    from ddnm_edu.pretrained import registry

    run = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ddnm_edu.tools.train",
            "--config",
            "emoji-32",
            "--out",
            str(run),
            "--batch",
            "2",
            "--n-train",
            "8",
            "--sample-every",
            "0",
            "--log-every",
            "1",
            "--threads",
            "1",
            "--steps",
            "1",
        ],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    assert _ckpt(run)["init_from"] == ""  # from scratch, and the checkpoint says so
    losses = {s: 0.01 * (1 + s % 7) for s in range(25, 1001, 25)}  # as if logged every 25 steps up to step 1000
    with open(run / "loss.csv", "w") as f:
        f.write("step,loss,lr,wall_seconds\n" + "".join(f"{s},{v},1e-4,{s}.0\n" for s, v in losses.items()))
    rec, _ = _export_to_copy(tmp_path, run, "emoji-32", "--init-steps", str(registry()["emoji-32"]["steps"]))
    want = sum(v for s, v in losses.items() if s > 500) / 20  # steps 525..1000: 20 rows
    assert rec["final_loss"] == round(want, 4)
    assert rec["final_loss"] != round(sum(list(losses.values())[-10:]) / 10, 4)  # what a 10-row mean gave


def test_ddp_two_processes_on_cpu(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("gloo backend not available")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ddnm_edu.tools.train",
        "--config",
        "fashion-mnist-32",
        "--out",
        str(tmp_path),
        "--steps",
        "3",
        "--batch",
        "8",
        "--n-train",
        "64",
        "--sample-every",
        "0",
        "--log-every",
        "1",
        "--threads",
        "1",
    ]
    r = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["world_size"] == 2 and meta["batch"] == 8
    assert _ckpt(tmp_path)["step"] == 3
    # the model card's hardware row says how many processes trained it
    rec, _ = _export_to_copy(tmp_path, tmp_path, meta["config"])
    assert rec["hardware"].endswith(", 2 processes (DDP)")


def test_prior_check_compares_a_run_with_the_shipped_model(tmp_path):
    """benchmarks/prior_check.py on a 1-step run: both columns, every emoji style and the unseen-base Noto
    subset, the targets; and on a candidate weights file."""
    from ddnm_edu.tools.emoji import unseen_base
    from ddnm_edu.pretrained import WEIGHTS_DIR, registry

    run = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ddnm_edu.tools.train",
            "--config",
            "emoji-32",
            "--out",
            str(run),
            "--batch",
            "4",
            "--n-train",
            "16",
            "--sample-every",
            "0",
            "--threads",
            "1",
            "--steps",
            "1",
            "--init-from",
            str(WEIGHTS_DIR / "emoji-32.pt"),
        ],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "prior_check.py"),
            "--name",
            "emoji-32",
            "--run",
            str(run),
            "--n",
            "2",
            "--steps",
            "2",
            "--n-loss",
            "4",
            "--out",
            str(tmp_path),
        ],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    rep = json.loads((tmp_path / "prior-check-emoji-32.json").read_text())
    sets = {"noto", "openmoji", "fluent-flat", "noto-unseen"}
    assert set(rep["shipped"]["loss"]) == set(rep["run"]["loss"]) == set(rep["run"]["restoration"]) == sets
    assert rep["run"]["sizes"]["noto-unseen"] == len(unseen_base("noto")) < rep["run"]["sizes"]["noto"]
    assert {t["style"] for t in rep["run"]["targets"]} == sets
    assert rep["info"]["run_steps"] == 1 and rep["info"]["run_init_steps"] == rep["info"]["shipped_steps"]
    md = (tmp_path / "prior-check-emoji-32.md").read_text()
    assert "| fluent-flat | colorize |" in md and "| noto-unseen | sr4 |" in md
    assert f"on top of {rep['info']['shipped_steps']:,}." in md
    # a weights file with a record (a candidate) instead of a run folder: its steps come from the record
    cand = json.loads((CANDIDATES / "weights.json").read_text())["emoji-32"]
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "prior_check.py"),
            "--name",
            "emoji-32",
            "--run",
            str(CANDIDATES / cand["file"]),
            "--n",
            "1",
            "--steps",
            "2",
            "--n-loss",
            "2",
            "--out",
            str(tmp_path),
        ],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    info = json.loads((tmp_path / "prior-check-emoji-32.json").read_text())["info"]
    assert info["run_init_steps"] == cand["steps_before_this_run"] == registry()["emoji-32"]["steps"]
    assert info["run_steps"] == cand["steps"] - cand["steps_before_this_run"] > 0
    assert info["run"] == "data/candidates/emoji-32.pt"
    assert f"on top of {info['run_init_steps']:,}." in (tmp_path / "prior-check-emoji-32.md").read_text()
    # a weights file nothing records (a run's own ema.pt): a clear exit, not a made-up step count
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "prior_check.py"),
            "--name",
            "emoji-32",
            "--run",
            str(run / "ema.pt"),
            "--out",
            str(tmp_path),
        ],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "records its sha256" in r.stderr


def test_supervised_restormer_trains_exports_and_loads(tmp_path):
    """The specialist goes through the same machinery: train (L1 of f(A^dagger y) vs x0), resume, export
    into a registry, load_pretrained -> a Restormer that restores a (B, 1, 32, 32) batch."""
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "ddnm_edu.tools.train",
        "--config",
        "restormer-sr4",
        "--out",
        str(run),
        "--batch",
        "4",
        "--n-train",
        "32",
        "--log-every",
        "1",
        "--threads",
        "1",
    ]
    subprocess.run(args + ["--steps", "2"], check=True, env=_env(), cwd=ROOT, capture_output=True)
    r = subprocess.run(args + ["--steps", "3"], check=True, env=_env(), cwd=ROOT, capture_output=True, text=True)
    assert "resumed from" in r.stdout
    ck = _ckpt(run)
    assert ck["step"] == 3 and ck["restormer"]["dim"] == 16 and "unet" not in ck
    meta = json.loads((run / "run.json").read_text())
    assert meta["task"] == "sr4" and meta["loss"] == "l1" and not list(run.glob("samples_*.png"))
    rows = list(csv.DictReader(open(run / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and all(0 < float(r["loss"]) < 2 for r in rows)
    rec, env = _export_to_copy(tmp_path, run, "my-sr4")
    assert rec["task"] == "sr4" and rec["steps"] == 3 and "restormer" in rec
    assert (tmp_path / "weights" / "my-sr4-loss.csv").exists()
    code = (
        "import torch, ddnm_edu as de; from ddnm_edu.pretrained import available; "
        "m = de.load_pretrained('my-sr4'); print(type(m).__name__, tuple(m(torch.zeros(2, 1, 32, 32)).shape), "
        "'my-sr4' in available('specialist'), 'my-sr4' in available('diffusion'))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["Restormer", "(2,", "1,", "32,", "32)", "True", "False"]


def test_candidate_weights_load_and_count_their_steps(tmp_path):
    """data/candidates/: sha256 as recorded, loads into its UNet, and --init-from counts its steps (from the
    weights.json beside it, not from the shipped file of the same name)."""
    from ddnm_edu.data import sha256
    from ddnm_edu.pretrained import load_pretrained, registry

    folder = CANDIDATES
    recs = json.loads((folder / "weights.json").read_text())
    assert recs, "data/candidates/weights.json lists no candidate"
    for name, rec in recs.items():
        path = folder / rec["file"]
        assert sha256(path) == rec["sha256"]
        assert sum(p.numel() for p in load_pretrained(name, "cpu", path).parameters()) == rec["params"]
        assert rec["steps"] > registry()[name]["steps"] and rec["status"].startswith("candidate, not shipped")
    name, rec = next(iter(recs.items()))
    run = tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ddnm_edu.tools.train",
            "--config",
            name,
            "--out",
            str(run),
            "--batch",
            "2",
            "--n-train",
            "8",
            "--sample-every",
            "0",
            "--log-every",
            "1",
            "--threads",
            "1",
            "--steps",
            "1",
            "--init-from",
            str(folder / rec["file"]),
        ],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    assert _ckpt(run)["init_steps"] == rec["steps"] != registry()[name]["steps"]


def test_init_record_matches_weights_by_sha256_not_by_file_name(tmp_path):
    """--init-from counts the steps of the record whose sha256 is the file's: a copy of the shipped file under
    any name gets the shipped steps; a different file named like a shipped one (a run's export) gets none,
    unless the weights.json beside it records it."""
    import shutil

    from ddnm_edu.pretrained import WEIGHTS_DIR, registry
    from ddnm_edu.pretrained import init_record

    shipped = registry()["emoji-32"]
    renamed = tmp_path / "a" / "prior.pt"
    renamed.parent.mkdir()
    shutil.copy(WEIGHTS_DIR / shipped["file"], renamed)
    assert init_record(renamed)["steps"] == shipped["steps"]
    other = tmp_path / "b" / shipped["file"]  # same name, other weights, no record
    other.parent.mkdir()
    sd = torch.load(WEIGHTS_DIR / shipped["file"], weights_only=True)
    torch.save({k: v + 1e-3 if v.is_floating_point() else v for k, v in sd.items()}, other)
    assert init_record(other) is None
    from ddnm_edu.data import sha256

    (other.parent / "weights.json").write_text(
        json.dumps({"emoji-32": dict(shipped, sha256=sha256(other), steps=shipped["steps"] + 5)})
    )
    assert init_record(other)["steps"] == shipped["steps"] + 5


def test_prior_check_says_what_a_run_started_from():
    """'on top of': recorded steps, 'from scratch' only when the checkpoint says so, else 'not recorded'."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prior_check", ROOT / "benchmarks" / "prior_check.py")
    pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pc)
    assert pc._started_from({"run_init_steps": 3348, "run_init_from": "x.pt"}) == "3,348"
    assert pc._started_from({"run_init_steps": 0, "run_init_from": ""}) == "none (trained from scratch)"
    for unknown in (None, "mine.pt"):  # an older checkpoint; --init-from a file without a record
        assert "not recorded" in pc._started_from({"run_init_steps": 0, "run_init_from": unknown})
    # an interpolated file (pretrained.interpolate) has no steps of its own to put "on top of" anything
    assert (
        pc._run_training({"run_steps": 5928, "run_init_steps": 3348, "run_init_from": None})
        == "5,928 steps on top of 3,348"
    )
    assert pc._run_training(
        {"run_steps": 5928, "run_init_steps": 3348, "run_init_from": None, "run_interpolated": True}
    ).startswith("no optimiser steps of its own")
