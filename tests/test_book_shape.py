"""A textbook, not a lab notebook (issue 40): every core chapter follows one template, and its reading path
fits a sitting. The measurements are ``tests/book_shape.py``'s; ``python tests/book_shape.py`` prints them."""

from __future__ import annotations

import json

import book_shape as bs


def _nb(tmp_path, cells):
    path = tmp_path / "01-x.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    return path


def md(s):
    return {"cell_type": "markdown", "metadata": {}, "source": s}


def code(s, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": s}


def test_the_measure_counts_only_the_reading_path(tmp_path):
    cells = [
        md("# 1. Title\n\nFive words of prose here. $a + b = c$ and $$x = y$$ (eq-x)"),
        code("x = 1\n# a comment\n\nassert x == 1"),
        code("assert x == 1\nassert x > 0", tags=["hide-input"]),
        md(
            "```{exercise} Try it ★★\n:label: ex-x\nDo this.\n```\n\n````{solution-start} ex-x\n"
            ":class: dropdown\n````\nThe long answer is not read."
        ),
        code("y = 2\ny += 1"),  # inside the solution
        md("````{solution-end}\n````\n\n## Notes\n\nResearch words are not counted here at all."),
        code("z = 3"),  # after the notes begin
    ]
    s = bs.shape(_nb(tmp_path, cells))
    # Title, Five words of prose here, and; Try it, Do this
    assert s.words == 1 + 5 + 1 + 2 + 2, s.words
    assert (s.code, s.asserts) == (2, 1)
    assert s.untagged == []
    assert "50% of the visible code is assert (at most 5 %)" in s.shortfalls()
    assert "no prerequisites" in s.shortfalls()


def test_the_template_is_found_and_a_wrong_time_is_caught(tmp_path):
    opener = (
        "# 1. T\n\n```{admonition} Before you start\n**Prerequisites**: none.\n\n**You will learn**\n\n- a\n\n"
        "**Time**: about 30 minutes to read.\n```"
    )
    closer = (
        "## Key takeaways\n\n- a\n\n## Check your understanding\n\n1. Why?\n\n   ```{admonition} Answer\n"
        "   :class: dropdown\n   Because the folded answer is not read.\n   ```\n\n## Exercises\n\n"
    )
    cells = [md(opener), md(closer + "```{exercise} Untagged\n:label: ex-y\nDo.\n```")]
    s = bs.shape(_nb(tmp_path, cells))
    assert all(s.template.values()), s.template
    assert s.untagged == ["Untagged"]
    assert s.words == 26, s.words  # the answer's title is read, its text is folded
    assert s.minutes == 5 and s.stated_minutes == 30
    assert any(f.startswith("the opener says 30 minutes") for f in s.shortfalls())


def test_every_core_chapter_follows_the_template_and_fits_a_sitting():
    shortfalls = [f"{path.stem}: {f}" for path in bs.core_chapters() for f in bs.shape(path).shortfalls()]
    assert not shortfalls, "\n".join(shortfalls)
