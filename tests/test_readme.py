"""The README's list of chapters is the book's: every chapter of _toc.yml, in order, by its own title."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _title(path: Path) -> str:
    """A chapter's first '# ' heading, as the README writes it: '# 7. DDNM: ...' -> '7 ddnm: ...'."""
    if path.suffix == ".ipynb":
        text = "\n".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
        )
    else:
        text = path.read_text()
    heading = next(line[2:] for line in text.splitlines() if line.startswith("# "))
    return re.sub(r"^(\d+)\.", r"\1", heading).strip().lower()


def test_readme_lists_the_chapters_of_the_toc_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    titles = [_title(next(ROOT.glob(f + ".*"))) for f in files]
    readme = " ".join((ROOT / "README.md").read_text().split())
    listed = readme.split("The book, in the order of `_toc.yml`: ", 1)[1].split(").", 1)[0] + ")"
    items = [item.strip().lower() for item in listed.split(" · ")]
    assert len(items) == len(titles), (items, titles)
    for item, title in zip(items, titles):
        assert item.startswith(title), f"README lists {item!r} where the book has {title!r}"
