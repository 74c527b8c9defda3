"""The one-call GPU job, dry-run end to end on the CPU with a tiny budget (issue 12, section 4)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test runs it, make check skips it

ROOT = Path(__file__).resolve().parent.parent


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_gpu_job_dry_run(tmp_path):
    shipped = {p.name: _sha(p) for p in (ROOT / "data" / "weights").iterdir()}
    r = subprocess.run(
        [sys.executable, "benchmarks/gpu_job.py", "--out", str(tmp_path), "--quick", "--budget-minutes", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job = json.loads((tmp_path / "job.json").read_text())
    assert all(s["status"] == "ok" for s in job["stages"].values()), job
    reg = json.loads((tmp_path / "weights" / "weights.json").read_text())
    assert reg["emoji-32"]["sha256"] == _sha(tmp_path / "weights" / "emoji-32.pt") != shipped["emoji-32.pt"]
    assert reg["emoji-32"]["steps"] > 0
    assert (tmp_path / "weights" / "emoji-32.md").exists() and (tmp_path / "weights" / "emoji-32-eval.json").exists()
    assert (tmp_path / "benchmarks" / "results-dryrun.md").exists()
    assert "passed" in (tmp_path / "tests.log").read_text()
    # the repository's shipped weights are untouched
    assert {p.name: _sha(p) for p in (ROOT / "data" / "weights").iterdir()} == shipped
