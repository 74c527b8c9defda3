"""Code that fits the page: the HTML book shows about 80 characters of a code line before it scrolls."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX = 80
FENCE = re.compile(r"^(`{3,}|~{3,})")


def code_lines(path: Path) -> list[tuple[str, str]]:
    """(where, line) for every line a reader sees as code: code cells, and fenced blocks in markdown
    (directives such as ```{note} hold prose and are left out)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        parts = [(f"cell {i}", c["cell_type"], "".join(c["source"])) for i, c in enumerate(cells)]
    else:
        parts = [("", "markdown", path.read_text())]
    out = []
    for where, kind, src in parts:
        if kind == "code":
            out += [(where, line) for line in src.splitlines()]
            continue
        inside = None
        for line in src.splitlines():
            m = FENCE.match(line.strip())
            if m and inside is None:
                inside = m.group(1) if not line.strip()[len(m.group(1)) :].startswith("{") else "directive"
            elif m and inside is not None and line.strip() == inside:
                inside = None
            elif inside not in (None, "directive"):
                out.append((where, line))
    return out


def test_every_code_line_of_the_book_fits_in_80_characters():
    chapters = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
    assert len(chapters) >= 12
    long = [
        f"{p.name} {where}: {len(line)} chars: {line.strip()[:60]}"
        for p in chapters
        for where, line in code_lines(p)
        if len(line) > MAX
    ]
    assert not long, f"{len(long)} code lines longer than {MAX} characters:\n" + "\n".join(long[:40])


def test_the_check_finds_long_lines_in_cells_and_fences(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["x = 1\n", "y = '" + "a" * 80 + "'\n"]},
            {
                "cell_type": "markdown",
                "source": ["```python\n", "z" * 81 + "\n", "```\n", "```{note}\n", "p" * 200 + "\n", "```\n"],
            },
        ]
    }
    p = tmp_path / "c.ipynb"
    p.write_text(json.dumps(nb))
    assert [len(line) for _, line in code_lines(p) if len(line) > MAX] == [86, 81]
