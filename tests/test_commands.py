"""Every command answers bad input with one line on stderr and exit code 2, never a traceback.

The entry points (``python -m ddnm_edu.tools.<tool>`` and ``ddnm-edu``) share one wrapper,
:func:`ddnm_edu.tools.command.run_command`, and one parser class whose usage errors are one line too.
Each case runs the real command in a subprocess, with the system Fashion-MNIST folder hidden
where the case is about a missing dataset.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # commands, training, evaluation: make test runs it, make check skips it

ROOT = Path(__file__).resolve().parent.parent
MISSING = "{tmp}/missing.pt"

# (module, arguments, hide the dataset?, what the one line must say)
CASES = [
    (
        "train",
        ["--config", "fashion-mnist-32", "--out", "{tmp}/run", "--steps", "1"],
        True,
        "Fashion-MNIST train images not found",
    ),
    (
        "train",
        ["--config", "emoji-32", "--out", "{tmp}/run", "--steps", "1", "--init-from", MISSING],
        False,
        "missing.pt not found",
    ),
    ("train", ["--config", "imagenet-256", "--out", "{tmp}/run"], False, "invalid choice: 'imagenet-256'"),
    ("train", ["--config", "emoji-32", "--out", "{tmp}/run", "--batch", "lots"], False, "invalid int value: 'lots'"),
    (
        "evaluate",
        ["models", "--name", "fashion-mnist-32", "--weights", MISSING, "--out", "{tmp}/cards"],
        False,
        "missing.pt not found",
    ),
    ("evaluate", ["models", "--name", "imagenet-256", "--out", "{tmp}/cards"], False, "unknown model 'imagenet-256'"),
    ("evaluate", ["leaderboard"], False, "invalid choice: 'leaderboard'"),
    ("weights", ["export", "--run", "{tmp}/no-run", "--name", "x"], False, "no checkpoint.pt in"),
    (
        "weights",
        ["interpolate", "--a", MISSING, "--b", MISSING, "--alpha", "0.5", "--name", "x", "--out", "{tmp}/mix"],
        False,
        "missing.pt: missing",
    ),
    ("weights", ["publish"], False, "invalid choice: 'publish'"),
    ("classroom", ["export", "{tmp}/course", "--chapters", "99"], False, "no notebook chapter 99"),
    ("classroom", ["grade"], False, "invalid choice: 'grade'"),
    ("datasets", ["build", "--out", "{tmp}/data"], True, "Fashion-MNIST test images not found"),
    ("datasets", ["download"], False, "invalid choice: 'download'"),
]


def _one_line_error(r: subprocess.CompletedProcess, prog: str, says: str) -> None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{prog}") and ": error: " in lines[0], lines[0]
    assert says in lines[0], lines[0]


@pytest.mark.parametrize("tool,args,hide,says", CASES, ids=[f"{c[0]}-{c[3][:24]}" for c in CASES])
def test_python_m_entry_points_give_one_line_and_exit_2(tmp_path, tool, args, hide, says):
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        DDNM_EDU_WEIGHTS=str(tmp_path / "weights"),
        TQDM_DISABLE="1",
        PYTHONWARNINGS="ignore",
    )
    env.pop("WORLD_SIZE", None)
    if hide:  # the Debian dataset folder, as on a machine without the package
        env["DDNM_EDU_FASHION_DIR"] = str(tmp_path / "no-dataset")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "weights.json").write_text((ROOT / "data" / "weights" / "weights.json").read_text())
    argv = [a.format(tmp=tmp_path) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", f"ddnm_edu.tools.{tool}", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    prog = (
        "ddnm-edu classroom" if tool == "classroom" else f"python -m ddnm_edu.tools.{tool}"
    )  # one command, two doors
    _one_line_error(r, prog, says)


def test_ddnm_edu_command_shares_the_wrapper(tmp_path):
    """``ddnm-edu restore`` and ``ddnm-edu classroom`` go through the same wrapper: a usage error and an
    input error each give one line and exit 2."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "ddnm_edu.tools.cli"]
    r = subprocess.run(
        base + ["restore", "x.png", "--model", "emoji-32", "--out", "o.png"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    _one_line_error(r, "ddnm-edu restore", "the following arguments are required: --task")
    r = subprocess.run(
        base + ["classroom", "export", str(tmp_path / "c"), "--chapters", "99"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    _one_line_error(r, "ddnm-edu classroom", "no notebook chapter 99")
