"""A real distribution: the wheel that ``python -m build`` makes carries the shipped weights and datasets,
and works from a fresh virtualenv outside the checkout (loading every model and dataset, ``ddnm-edu
restore`` through the installed console script), finding them as package data, never through the
repository's layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test runs it, make check skips it

ROOT = Path(__file__).resolve().parents[1]


def _tracked(prefix: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", prefix], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"git ls-files failed: {out.stderr.strip()}")
    return set(out.stdout.split())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """sdist, then the wheel built from the sdist (python -m build), so both must carry the assets."""
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,) = dist.glob("ddnm_edu-*.whl")
    print(f"wheel: {whl.name}, {whl.stat().st_size / 2**20:.1f} MiB")
    return whl


def test_the_wheel_carries_the_assets_and_no_training_only_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {"ddnm_edu/assets/" + n.removeprefix("data/") for n in _tracked("data") if "/candidates/" not in n}
    assert shipped and shipped <= names, sorted(shipped - names)[:5]
    assert _tracked("ddnm_edu") - {n for n in _tracked("ddnm_edu") if n.endswith(".ipynb")} <= names
    assert not any(n.startswith(("data/", "book/", "tests/", "benchmarks/")) for n in names)
    assert not any("candidates" in n for n in names)  # trained, not shipped: stays in the repository
    assert wheel.stat().st_size < 60 * 2**20


CHECK = """
import json, sys
from pathlib import Path
import ddnm_edu as de
from ddnm_edu import data, pretrained
where = Path(de.__file__).resolve()
assert where.is_relative_to(Path(sys.prefix).resolve()), where  # the installed copy, not a checkout
assert not any((Path(p) / "book").is_dir() for p in sys.path if p), "a checkout is on sys.path"
models = pretrained.available()
for name in models:
    pretrained.load_pretrained(name)  # sha256 checked against weights.json
sizes = {f"{d}/{s}": len(data.load(d, s)) for d, s in
         (("fashion-mnist", "test"), ("emoji", "train"), ("emoji", "test"))}
print(json.dumps({"models": models, "sizes": sizes, "assets": str(data.ASSETS)}))
"""


def test_the_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, script = venv / "bin" / "python", venv / "bin" / "ddnm-edu"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    # torch, numpy, pillow and tqdm come from this environment's site-packages, as a plain path (its .pth
    # files, such as the editable install's finder, are not run): ddnm_edu itself can only come from the wheel
    deps = os.pathsep.join(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDNM_EDU_")} | {"PYTHONPATH": deps}
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, cwd=work, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"fashion-mnist-32", "emoji-32", "restormer-sr4"} <= set(got["models"])
    assert (
        got["sizes"]
        == {
            "fashion-mnist/test": 1000,
            "emoji/train": got["sizes"]["emoji/train"],
            "emoji/test": got["sizes"]["emoji/test"],
        }
        and min(got["sizes"].values()) > 100
    )
    assert Path(got["assets"]).resolve().is_relative_to(venv.resolve())
    from PIL import Image

    Image.new("L", (8, 8), 128).save(work / "small.png")
    r = subprocess.run(
        [
            str(script),
            "restore",
            "small.png",
            "--task",
            "sr4",
            "--model",
            "fashion-mnist-32",
            "--steps",
            "3",
            "--out",
            "big.png",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert Image.open(work / "big.png").size == (32, 32)


#: solution or test lines that are also ordinary library code, written there for its own sake (not an answer)
LIBRARY_IDIOMS = {"x_t = sched.add_noise(x0, eps, t)", "with torch.no_grad():"}


def test_the_wheel_holds_no_grader_test_and_no_solution(wheel):
    """Students who pip install the library get no answers: no line of any grader test (hidden or not) of the
    course file, and no distinctive line of any solution in the book, appears in the wheel."""
    import json

    from ddnm_edu.tools import classroom as C

    zf = zipfile.ZipFile(wheel)
    text = "\n".join(
        zf.read(n).decode("utf-8", "replace")
        for n in zf.namelist()
        if n.endswith((".py", ".md", ".json", ".txt", ".toml", ".csv", ".cfg"))
    )
    course = C.load_course()
    tests = {ln.strip() for spec in course.auto.values() for ln in spec["tests"].splitlines()}
    tests = {ln for ln in tests if len(ln) > 12 and not ln.startswith("###") and ln not in LIBRARY_IDIOMS}
    solutions, shown = set(), []
    for path in C.chapters():
        for piece in C.pieces(json.loads(path.read_text())):
            if piece.solution is None:
                shown.append(piece.text)
            elif piece.kind == "code":
                solutions |= {ln.strip() for ln in piece.text.splitlines()}
    shown_text = "\n".join(shown)  # a line the chapter itself shows outside a solution gives nothing away
    solutions = {
        ln
        for ln in solutions
        if len(ln) >= 25 and not ln.startswith("#") and ln not in shown_text and ln not in LIBRARY_IDIOMS
    }
    assert len(tests) > 20 and len(solutions) > 50  # the search has something to find
    leaks = sorted(ln for ln in tests | solutions if ln in text)
    assert not leaks, leaks[:10]
