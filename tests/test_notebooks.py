"""The chapter notebooks as files: the launch-button guard cell, and clean (output-free) commits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def guard_cell(path: Path) -> dict:
    return next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


def test_every_chapter_starts_with_the_same_install_guard():
    """One guard, identical everywhere (it cannot live in ddnm_edu: it installs ddnm_edu), hidden in the book."""
    cells = [guard_cell(p) for p in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 9
    assert all("".join(c["source"]) == "".join(cells[0]["source"]) for c in cells)
    assert all(c["metadata"].get("tags") == ["remove-cell"] for c in cells)
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert repo in "".join(cells[0]["source"])


def _run_guard(monkeypatch, installed: bool) -> list:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    if not installed:
        monkeypatch.setitem(sys.modules, "ddnm_edu", None)  # `import ddnm_edu` raises ImportError
        monkeypatch.setattr(sys, "path", list(sys.path))
    src = "".join(guard_cell(NOTEBOOKS[0])["source"])
    try:
        exec(compile(src, "guard", "exec"), {})
    except ImportError:
        assert not installed  # the fake install did not really install anything
    return calls


def test_guard_does_nothing_where_the_library_is_installed(monkeypatch):
    assert _run_guard(monkeypatch, installed=True) == []


def test_guard_installs_the_package_where_it_is_missing(monkeypatch):
    """pip builds and installs the package (weights and data inside it, tests/test_wheel.py); no clone."""
    calls = _run_guard(monkeypatch, installed=False)
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert [c[0] for c in calls] == [[sys.executable, "-m", "pip", "install", "-q", f"ddnm-edu[book] @ git+{repo}"]]
    assert all(kw.get("check") for _, kw in calls)


def test_data_and_weights_are_the_checkouts_data_folder():
    """In a checkout the library finds its data and weights in the top-level data/ (an installed wheel
    has them as ddnm_edu/assets; tests/test_wheel.py checks that from outside the checkout)."""
    from ddnm_edu import data
    from ddnm_edu.pretrained import WEIGHTS_DIR

    assert data.ASSETS == ROOT / "data" and not (ROOT / "ddnm_edu" / "assets").exists()
    assert (data.ASSETS / "manifest.json").exists() and (WEIGHTS_DIR / "weights.json").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path):
    """The book executes the chapters itself; commits stay small and diffs readable (README: nbstripout)."""
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None, path.name
