"""Sphinx extension: figures numbered by chapter, "Fig. 7.2", as a textbook numbers them.

Sphinx numbers figures through the whole book when its sections are not numbered (the chapters
carry their numbers in their titles: "# 8. DDNM ..."), so chapter 8's second figure would be
"Fig. 23". After Sphinx assigns its numbers (the ``env-get-updated`` event), each chapter's figures
are renumbered from 1 behind the chapter's number, taken from the file name (``book/08-ddnm`` ->
8, ``book/00-preface`` -> P, the appendices by ``APPENDICES``). Tables and code listings keep Sphinx's.
"""

from __future__ import annotations

import re

CHAPTER = re.compile(r"(?:^|/)(\d+)-[^/]*$")
APPENDICES = {"appendix-real-images": "A", "appendix-math": "B"}


def chapter_label(docname: str) -> str | None:
    """ "book/08-ddnm" -> "8", "book/00-preface" -> "P", "book/appendix-math" -> "B", else None."""
    m = CHAPTER.search(docname)
    if m:
        return str(int(m.group(1))) if int(m.group(1)) else "P"
    return APPENDICES.get(docname.rsplit("/", 1)[-1])


def renumber(fignumbers: dict[str, dict[str, dict[str, tuple]]]) -> None:
    """In place: each chapter's figures become (chapter, 1), (chapter, 2), ... in Sphinx's order."""
    for docname, by_type in fignumbers.items():
        label = chapter_label(docname)
        figures = by_type.get("figure")
        if label is None or not figures:
            continue
        order = sorted(figures, key=lambda fid: figures[fid])
        by_type["figure"] = {fid: (label, k) for k, fid in enumerate(order, 1)}


def _renumber(app, env) -> list[str]:
    renumber(env.toc_fignumbers)
    return []


def setup(app):
    app.connect("env-get-updated", _renumber, priority=900)  # after Sphinx's own numbering (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
