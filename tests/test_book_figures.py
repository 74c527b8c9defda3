"""Every figure of the book is numbered, captioned and referred to by number (issue 39).

A code cell that draws a figure carries MyST-NB's ``mystnb: figure: {name, caption}`` metadata, so the
built book wraps its output in a numbered figure with a caption ("Fig. 8.2", numbered by chapter
by ``book/_ext/chapter_figures.py``). This module checks the notebooks' sources; the built HTML is
checked by ``tests/test_notebooks.py``'s book build and the browser tests.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
# calls that put a figure (or the static step viewer) in a cell's output
DRAWING = {"show_images", "show_decomposition", "show_trace_static", "subplots", "show_quartiles", "display"}


def drawing_calls(src: str) -> list[str]:
    """The drawing calls a cell makes when it runs: not those inside the functions it defines."""
    calls = []

    def visit(node, in_def=False):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            in_def = True
        if isinstance(node, ast.Call) and not in_def:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in DRAWING and not (name == "display" and node.args and isinstance(node.args[0], ast.Call)):
                calls.append(name)  # display(show_...(...)) is one output: the inner call counts
        for child in ast.iter_child_nodes(node):
            visit(child, in_def)

    visit(ast.parse(src))
    return calls


NUMREF = re.compile(r"\{numref\}`([^`<]+?)`|\{numref\}`[^`]*<([^`>]+)>`")


def shows_a_value(src: str) -> bool:
    """Whether the cell ends in a call whose value Jupyter would print (a Legend, a Colorbar, ...):
    a second output, besides the figure. A trailing ';' silences it."""
    last = ast.parse(src).body[-1]
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        return False
    f = last.value.func
    name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
    quiet = {"tight_layout", "subplots_adjust", "show", "print", "display"} | DRAWING
    return name not in quiet and not src.rstrip().endswith(";")


def _chapters() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


def _figures(path: Path) -> list[tuple[int, dict | None, str]]:
    cells = json.loads(path.read_text())["cells"]
    out = []
    for i, c in enumerate(cells):
        src = "".join(c["source"])
        if c["cell_type"] == "code" and (set(drawing_calls(src)) - {"display"} or "mystnb" in c.get("metadata", {})):
            out.append((i, c.get("metadata", {}).get("mystnb", {}).get("figure"), src))
    return out


def _prefix(path: Path) -> str:
    m = re.match(r"(\d+)-", path.name)
    return (
        f"fig-ch{int(m.group(1))}-" if m else {"appendix-real-images": "fig-a-", "appendix-math": "fig-b-"}[path.stem]
    )


def test_every_figure_is_named_and_captioned():
    missing, bad, names = [], [], {}
    for path in _chapters():
        for i, fig, src in _figures(path):
            if fig is None:
                missing.append(f"{path.name} cell {i}")
                continue
            name, caption = fig.get("name", ""), fig.get("caption", "")
            if not name.startswith(_prefix(path)) or len(caption.split()) < 8:
                bad.append(f"{path.name} cell {i}: name {name!r}, caption of {len(caption.split())} words")
            if name in names:
                bad.append(f"{path.name} cell {i}: {name} already names {names[name]}")
            names[name] = f"{path.name} cell {i}"
    assert not missing, "figures without `mystnb: figure` metadata (name and caption): " + ", ".join(missing)
    assert not bad, "; ".join(bad)
    assert len(names) >= 45  # the book's figures, all of them


def test_a_figure_cell_shows_one_output_only():
    """MyST-NB wraps every display output of a captioned cell in the figure: a second one (a table,
    another plot, a stray repr) would repeat the figure's name, so those live in cells of their own."""
    two = []
    for path in _chapters():
        for i, fig, src in _figures(path):
            if fig is None:
                continue
            draws = len(drawing_calls(src))
            if draws != 1 or shows_a_value(src):
                two.append(f"{path.name} cell {i} ({draws} drawing calls, or a value shown at the end)")
    assert not two, "; ".join(two)


def test_figures_are_referred_to_by_number():
    """Each chapter's text refers to its figures by number ({numref}), and every reference resolves."""
    names, refs = set(), {}
    for path in _chapters():
        nb = json.loads(path.read_text())
        for c in nb["cells"]:
            fig = c.get("metadata", {}).get("mystnb", {}).get("figure")
            if fig:
                names.add(fig["name"])
            if c["cell_type"] == "markdown":
                for a, b in NUMREF.findall("".join(c["source"])):
                    refs.setdefault(a or b, []).append(path.name)
    assert set(refs) <= names, f"{{numref}} to no figure: {sorted(set(refs) - names)}"
    unreferred = sorted(n for n in names - set(refs) if not n.endswith(("-columns", "-cs")))
    assert len(unreferred) <= 0.1 * len(names), f"figures the text never refers to: {unreferred}"


def test_chapter_numbering():
    spec = importlib.util.spec_from_file_location("chapter_figures", BOOK / "_ext" / "chapter_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.chapter_label("book/08-ddnm") == "8"
    assert mod.chapter_label("book/appendix-real-images") == "A"
    assert mod.chapter_label("book/appendix-math") == "B"
    assert mod.chapter_label("book/00-preface") == "P"
    assert mod.chapter_label("book/intro") is None
    # Sphinx numbers through the whole book; each chapter restarts at 1 behind its number, in order
    nums = {
        "book/07-operators": {"figure": {"a": (12,), "b": (11,)}, "table": {"t": (3,)}},
        "book/08-ddnm": {"figure": {"c": (14,), "d": (13,)}},
        "book/intro": {"figure": {"e": (1,)}},
    }
    mod.renumber(nums)
    assert nums["book/07-operators"]["figure"] == {"b": ("7", 1), "a": ("7", 2)}
    assert nums["book/07-operators"]["table"] == {"t": (3,)}
    assert nums["book/08-ddnm"]["figure"] == {"d": ("8", 1), "c": ("8", 2)}
    assert nums["book/intro"]["figure"] == {"e": (1,)}
