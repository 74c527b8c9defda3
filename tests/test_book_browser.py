"""The built book as readers meet it: every chapter in real Chromium, with the network cut.

Needs the built HTML (``make test`` builds the book first; locally: ``make book``). Each chapter
is served from 127.0.0.1; any request elsewhere is aborted and fails the test. Screenshots go
to ``_build/browser-artefacts/`` (build artefacts, not committed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from browser import ARTEFACTS, ROOT, offline_browser, require, serve

pytestmark = pytest.mark.slow  # make test runs it, make check skips it

HTML = ROOT / "_build" / "html"


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


NOTEBOOKS = {c for c in chapters() if (ROOT / f"{c}.ipynb").exists()}
RAW_TEX = r"""() => {
  const bad = [];
  const w = document.createTreeWalker(document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode;
    if (n.parentElement.closest("pre, code, script, style, mjx-container, .highlight, textarea")) continue;
    if (/\\\(|\\\[|\$\$/.test(n.textContent)) bad.push(n.textContent.trim().slice(0, 80));
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def site():
    require((HTML / "book" / "08-ddnm.html").exists(), "the book is not built: run `make book` (make test does)")
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def page(site):
    with offline_browser(site) as p:
        yield p


def open_chapter(page, site: str, chapter: str) -> None:
    page.problems.clear()
    page.goto(f"{site}/{chapter}.html", wait_until="load")
    if page.evaluate("document.querySelectorAll('.math').length") > 0:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        page.evaluate("MathJax.startup.promise")
    page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)


@pytest.mark.parametrize("chapter", chapters())
def test_chapter_reads_offline(page, site, chapter):
    """No request leaves 127.0.0.1, nothing fails, every image loads, every equation is typeset."""
    open_chapter(page, site, chapter)
    n_math = page.evaluate("document.querySelectorAll('.math').length")
    assert page.evaluate("document.querySelectorAll('mjx-container').length") >= n_math
    assert page.evaluate(RAW_TEX) == [], "raw TeX left in the text: MathJax did not typeset it"
    broken = page.evaluate(
        "Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src.slice(0, 80))"
    )
    assert broken == [], broken
    assert (
        page.evaluate("document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
        == 0
    )
    assert page.problems == [], page.problems
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    if chapter.endswith(("06-range-null", "08-ddnm")):
        page.screenshot(path=str(ARTEFACTS / f"{Path(chapter).name}-offline.png"), full_page=False)


@pytest.mark.parametrize("chapter", ["book/08-ddnm", "book/09-ddnm-plus"])
def test_static_step_viewer_moves(page, site, chapter):
    """The per-step viewer changes frame, step label and caption when its slider moves (no kernel)."""
    open_chapter(page, site, chapter)
    viewers = page.locator(".ddnm-trace")
    assert viewers.count() >= 1
    uid = viewers.first.get_attribute("id")
    img, label, cap = page.locator(f"#{uid}-img"), page.locator(f"#{uid}-step"), page.locator(f"#{uid}-cap")
    n = int(page.locator(f"#{uid}-slider").get_attribute("max"))
    first, first_cap = img.get_attribute("src"), cap.inner_text()
    assert label.inner_text() == f"step 1 / {n}" and first.startswith("data:image/png;base64,")
    assert "t = " in first_cap  # the caption is there before any script runs
    page.locator(f"#{uid}-slider").fill(str(n))
    assert label.inner_text() == f"step {n} / {n}"
    assert img.get_attribute("src") != first and cap.inner_text() != first_cap
    assert page.evaluate(f"document.getElementById('{uid}-img').naturalWidth") > 0
    assert page.problems == [], page.problems


def test_exercise_solution_opens(page, site):
    """Solutions start folded (togglebutton) and open when their title is clicked."""
    open_chapter(page, site, "book/05-pseudo-inverse")
    sol = page.locator("div.solution.dropdown").first
    content = sol.locator("section").first
    assert sol.count() == 1 and not content.is_visible()
    sol.locator("button.toggle-button").first.click()
    content.wait_for(state="visible", timeout=5_000)
    assert "a^\\top" not in content.inner_text()  # typeset, not raw TeX
    assert page.problems == [], page.problems


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS))
def test_launch_link_points_at_the_chapter_notebook(page, site, chapter):
    page.goto(f"{site}/{chapter}.html", wait_until="domcontentloaded")
    hrefs = page.evaluate(
        "Array.from(document.querySelectorAll('a[href*=\"colab.research.google.com\"]')).map(a => a.href)"
    )
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    want = f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/{chapter}.ipynb"
    assert hrefs and all(h == want for h in hrefs), (hrefs, want)


def test_offline_assets_are_recorded():
    """The MathJax copy comes from the pinned PyPI package and keeps its licence."""
    mj = HTML / "_static" / "mathjax"
    require(mj.exists(), "the book is not built: run `make book` (make test does)")
    assert (mj / "tex-chtml.js").stat().st_size > 500_000 and "Apache License" in (mj / "LICENSE").read_text()
    assert "django-static-mathjax==3.2.2.1" in (ROOT / "pyproject.toml").read_text()


STUDENT_HTML = ROOT / "_build" / "student" / "_build" / "html"


def test_student_edition_has_the_exercises_but_no_solutions():
    """`make book-student` (make test runs it): every exercise, no solution; the default build has every
    solution (one per exercise, folded)."""
    import json
    import re

    from ddnm_edu.tools import classroom

    require((HTML / "book" / "08-ddnm.html").exists(), "the book is not built: run `make book` (make test does)")
    require(
        (STUDENT_HTML / "book" / "08-ddnm.html").exists(),
        "the student edition is not built: run `make book-student` (make test does)",
    )
    sol = re.compile(r'<div[^>]*class="[^"]*\bsolution\b')
    ex = re.compile(r'<div[^>]*class="[^"]*\bexercise\b')
    total = 0
    for path in classroom.chapters():
        n = len(classroom.exercises(json.loads(path.read_text())))
        total += n
        full = (HTML / "book" / f"{path.stem}.html").read_text()
        if path.stem in classroom.INSTRUCTOR_ONLY:
            assert not (STUDENT_HTML / "book" / f"{path.stem}.html").exists(), path.stem
            continue
        student = (STUDENT_HTML / "book" / f"{path.stem}.html").read_text()
        assert len(sol.findall(full)) == n and len(ex.findall(full)) == n, path.stem
        assert len(sol.findall(student)) == 0 and len(ex.findall(student)) == n, path.stem
        assert "student edition" in student
    assert total >= 19
    # no link back to a notebook with solutions: no launch buttons, no repository links, on any page
    for page in STUDENT_HTML.rglob("*.html"):
        text = page.read_text()
        assert "colab.research.google.com" not in text and "github.com/ddnm-edu" not in text, page.name
        assert "15-teaching.html" not in text, page.name  # no link to the instructors' chapter


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS))
def test_tables_printed_by_cells_render_as_tables(chapter):
    """A cell's display(Markdown(table)) must become an HTML table, not '| a | b | |---|' text."""
    import re

    require((HTML / "book" / "08-ddnm.html").exists(), "the book is not built: run `make book` (make test does)")
    page = (HTML / f"{chapter}.html").read_text()
    text = re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<pre.*?</pre>", " ", page))  # the page's text, code left out
    assert not re.search(r"\|\s*(---|—|–)+\s*\|", text), f"{chapter}: a Markdown table was printed as text"
