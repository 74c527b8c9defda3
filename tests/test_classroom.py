"""The classroom edition: nbgrader assignments exported from the book's exercises, graded end to end with
the real nbgrader, and the student edition of the book's sources (no solutions left)."""

import ast
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddnm_edu.tools import classroom as C

pytestmark = pytest.mark.slow  # make test runs it, make check skips it

ROOT = Path(__file__).resolve().parent.parent
COURSE = C.load_course()  # classroom/course.toml: what is graded, and how


def _book(n: int) -> dict:
    return json.loads(C.chapter_path(n).read_text())


def test_every_chapter_1_to_11_has_an_auto_graded_exercise_and_every_label_exists():
    labels = {}
    for p in C.chapters():
        for label in C.exercises(json.loads(p.read_text())):
            labels[label] = int(p.name[:2])
    for label in list(COURSE.auto) + list(COURSE.manual):
        assert label in labels, f"{label} is graded but no chapter has that exercise"
    graded_chapters = {labels[label] for label in COURSE.auto}
    assert set(range(1, 12)) <= graded_chapters, sorted(graded_chapters)


def test_pieces_split_solutions_at_their_fences():
    nb = _book(6)
    ps = C.pieces(nb)
    sols = {p.solution for p in ps if p.solution}
    assert sols == set(C.exercises(nb))
    for p in ps:
        assert "solution-start" not in p.text and "solution-end" not in p.text
    # the book's solution prose is inside, the exercise statements outside
    inside = "\n".join(p.text for p in ps if p.solution)
    outside = "\n".join(p.text for p in ps if not p.solution)
    assert "A - A A^\\dagger A = A - A = 0" in inside and "{exercise}" in outside


@pytest.mark.parametrize("n", range(1, 14))
def test_student_notebook_has_no_solution(n):
    nb = _book(n)
    student = C.student_notebook(nb)
    text = json.dumps(student)
    assert "solution-start" not in text and "solution-end" not in text
    for p in C.pieces(nb):
        if p.solution and p.kind == "code":
            assert p.text.strip() not in text
    assert text.count("{exercise}") == len(C.exercises(nb))


def test_assignment_source_marks_solutions_and_tests():
    src, points = C.assignment_notebook(_book(5))
    assert points == {"ex-ch5-color": 2, "ex-ch5-rowrank": 4}  # rowrank: 2 by hand, 2 auto-graded
    meta = [c["metadata"].get("nbgrader") for c in src["cells"]]
    tests = [m for m in meta if m and m["grade"] and not m["solution"]]
    assert [(m["grade_id"], m["points"]) for m in tests] == [("ex-ch5-color-test", 2), ("ex-ch5-rowrank-test", 2)]
    assert (
        src["cells"][0]["source"].startswith("**Assignment: 5.")
        and "6 points: 4 auto-graded" in src["cells"][0]["source"]
    )
    answers = [m for m in meta if m and m["grade"] and m["solution"]]
    assert [(m["grade_id"], m["points"]) for m in answers] == [("ex-ch5-rowrank-answer", 2)]
    for c in src["cells"]:
        m = c["metadata"].get("nbgrader")
        if m and m["solution"] and c["cell_type"] == "code":
            assert c["source"].startswith("### BEGIN SOLUTION") and "### END SOLUTION" in c["source"]
    text = json.dumps(src)
    assert "{exercise}" not in text and "**Exercise (ex-ch5-color): Colorization by hand \\u2605**" in text


def test_plain_markdown_keeps_an_indented_directive_in_its_list_item():
    from ddnm_edu.tools.myst import plain_markdown

    text = "1. Why?\n\n   ```{admonition} Answer\n   :class: dropdown\n   Because {eq}`eq-x`.\n   ```\n\n2. Next?\n"
    out = plain_markdown(text)
    assert "   > **Answer**\n   >\n   > Because (eq-x).\n" in out and "```" not in out and "2. Next?" in out


def test_exported_chapters_are_plain_markdown():
    """No MyST left for plain Jupyter to show as raw text: roles, directives, labelled equations."""
    text = C.plain_markdown(
        "See {eq}`eq-x` and {cite}`a2020, b2021`; {math}`x^2`.\n$$\nx = 1\n$$ (eq-x)\n```{note}\nCareful.\n```\n"
    )
    assert text == ("See (eq-x) and [a2020, b2021]; $x^2$.\n$$\nx = 1\n\\tag{eq-x}\n$$\n> **Note**\n>\n> Careful.\n")
    for path in C.chapters():
        src, points = C.assignment_notebook(json.loads(path.read_text()))
        for c in src["cells"]:
            if c["cell_type"] == "markdown":
                s = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                assert not re.search(r"\{(eq|cite|math|ref|numref|doc)\}`|```\{|\$\$ *\(", s), (path.name, s[:200])


# --------------------------------------------------------------------------- the real nbgrader
def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        DDNM_EDU_SCALE="cpu",
        OMP_NUM_THREADS="2",
    )
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nbgrader"]
    r = subprocess.run(cmd + list(args), cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _fill(release: dict, source: dict, edit=None) -> dict:
    """A student who answers every solution cell with the book's solution code (``edit`` may spoil one)."""
    sols = {
        c["metadata"]["nbgrader"]["grade_id"]: c["source"]
        for c in source["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")
    }
    out = json.loads(json.dumps(release))
    for c in out["cells"]:
        m = c["metadata"].get("nbgrader")
        if m and m["solution"]:
            code = re.sub(r"### (BEGIN|END) SOLUTION\n?", "", "".join(sols[m["grade_id"]]))
            c["source"] = edit(m["grade_id"], code) if edit else code
    return out


def _scores(course: Path, assignment: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: (g.score, g.max_score) for g in nb.grades if g.auto_score is not None or g.cell_type == "code"}


@pytest.mark.timeout(1200)
def test_nbgrader_generate_and_autograde(tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    summary = C.export(course, [5, 6])
    assert set(summary) == {"05-pseudo-inverse", "06-range-null"}
    for a in summary:
        _nbgrader(course, "generate_assignment", a, "--force")
        release = json.loads((course / "release" / a / f"{a}.ipynb").read_text())
        source = json.loads((course / "source" / a / f"{a}.ipynb").read_text())
        text = json.dumps(release)
        # no solution, no hidden test left in the student version
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        elsewhere = "".join(
            "".join(c["source"]) for c in source["cells"] if not c["metadata"].get("nbgrader", {}).get("solution")
        )
        for c in source["cells"]:
            m = c["metadata"].get("nbgrader")
            if m and m["solution"] and c["cell_type"] == "code":
                body = re.sub(r"### (BEGIN|END) SOLUTION\n?", "", c["source"])
                for line in body.splitlines():  # every solution line that the statement or tests do not show
                    if len(line.strip()) > 12 and line.strip() not in elsewhere:
                        assert json.dumps(line.strip())[1:-1] not in text, line
        assert "a.T / (a @ a.T)" not in text and "mask * x1, (1 - mask) * x1" not in text

        def wrong(grade_id, code):  # A^dagger with one wrong entry; ch6's parts for an operator that sees all
            if grade_id.startswith("ex-ch5-color"):
                return code + "\na_pinv = a_pinv.clone()\na_pinv[1, 0] += 0.25\n"
            if grade_id.startswith("ex-ch6-inpaint"):
                return (
                    "op_in = ops.Inpainting(torch.ones_like(ops.Inpainting.random_mask(32, 0.5, seed=3)))\n"
                    "range_x, null_x = x1, torch.zeros_like(x1)\n"
                )
            return code

        subs = {"perfect": _fill(release, source), "untouched": release, "wrong": _fill(release, source, wrong)}
        for student, nb in subs.items():
            d = course / "submitted" / student / a
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{a}.ipynb").write_text(json.dumps(nb))
    for a in summary:
        r = _nbgrader(course, "autograde", a, "--create", "--force")
        assert "cannot be converted to a float" not in r.stdout + r.stderr  # test cells end without a value
    auto = {
        a: {f"{label}-test": spec["points"] for label, spec in COURSE.auto.items() if label in summary[a]}
        for a in summary
    }
    # feedback shows the student what failed in one line, without the hidden tests or a library traceback
    _nbgrader(course, "generate_feedback", "05-pseudo-inverse", "--student", "wrong", "--force")
    page = (course / "feedback" / "wrong" / "05-pseudo-inverse" / "05-pseudo-inverse.html").read_text()
    page = html.unescape(re.sub(r"<[^>]+>", "", page))  # the text a student reads (code is highlighted)
    assert "CheckFailed: not the Moore-Penrose inverse" in page  # ddnm_edu.check's message, in one line
    assert "Traceback (most recent call last)" not in page and "check.py" not in page
    assert "HIDDEN TESTS" not in page and "torch.linalg.pinv(torch.full" not in page
    assert "de.check.pinv(a_pinv, a)" in page  # the visible part of the graded cell stays
    for a, tests in auto.items():
        perfect, untouched, wrong = (_scores(course, a, s) for s in ("perfect", "untouched", "wrong"))
        for gid, pts in tests.items():
            assert perfect[gid] == (pts, pts), (a, gid, perfect)  # the book's own solution: full points
            assert untouched[gid][0] == 0, (a, gid, untouched)  # untouched: zero, and autograde did not crash
        lost = {gid: tests[gid] - wrong[gid][0] for gid in tests}
        spoiled = {"05-pseudo-inverse": "ex-ch5-color-test", "06-range-null": "ex-ch6-inpaint-test"}[a]
        assert lost == {gid: (tests[gid] if gid == spoiled else 0) for gid in tests}  # exactly that exercise's


def test_student_book_sources_have_no_solutions(tmp_path):
    out = C.student_book(tmp_path / "student")
    assert (out / "_config.yml").read_text().count("(student edition)") == 1
    for p in sorted((out / "book").glob("*.ipynb")):
        text = p.read_text()
        assert "solution-start" not in text and "solution-end" not in text, p.name
    assert (out / "_toc.yml").exists() and (out / "book" / "references.bib").exists()
    for name in C.INSTRUCTOR_ONLY:  # the instructors' chapter (graded exercises, workflow) is not there
        assert not list((out / "book").glob(f"{name}.*")) and name not in (out / "_toc.yml").read_text()
    config = (out / "_config.yml").read_text()
    assert "launch_buttons" not in config and "github.com" not in config  # no way to the solutions


def test_cli_export(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ddnm_edu.tools.cli",
            "classroom",
            "export",
            str(tmp_path / "c"),
            "--chapters",
            "1",
            "11",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 0, r.stderr
    assert "ex-ch1-null (2 pt)" in r.stdout and "ex-ch11-psnr (2 pt)" in r.stdout
    assert (tmp_path / "c" / "nbgrader_config.py").exists()
    assert sorted(p.name for p in (tmp_path / "c" / "source").iterdir()) == ["01-inverse-problems", "11-evaluation"]
    shutil.rmtree(tmp_path / "c")


@pytest.mark.timeout(1800)
def test_the_books_solutions_score_full_points_in_every_chapter(tmp_path):
    """Every graded exercise's test passes on the book's own solution, run by nbgrader autograde (this
    executes every chapter with exercises once)."""
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    summary = C.export(course)
    graded = {label for pts in summary.values() for label in pts if label in COURSE.auto}
    assert graded == set(COURSE.auto)
    for a in summary:
        _nbgrader(course, "generate_assignment", a, "--force")
        release = json.loads((course / "release" / a / f"{a}.ipynb").read_text())
        source = json.loads((course / "source" / a / f"{a}.ipynb").read_text())
        assert "BEGIN SOLUTION" not in json.dumps(release) and "HIDDEN TESTS" not in json.dumps(release)
        d = course / "submitted" / "book" / a
        d.mkdir(parents=True)
        (d / f"{a}.ipynb").write_text(json.dumps(_fill(release, source)))
        _nbgrader(course, "autograde", a, "--create", "--force")
        scores = _scores(course, a, "book")
        for label in summary[a]:
            if label in COURSE.auto:
                pts = COURSE.auto[label]["points"]
                assert scores[f"{label}-test"] == (pts, pts), (a, label, scores)


def test_course_files_choose_the_exercises_and_bad_ones_get_one_clear_error(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(
        "[auto.\"ex-ch1-null\"]\npoints = 5\ntests = '''\nde.check.null_basis(basis, A1)\n'''\n"
        '[manual]\n"ex-ch3-forms" = 1\n'
    )
    summary = C.export(tmp_path / "c", course=mine)
    assert summary == {"01-inverse-problems": {"ex-ch1-null": 5}, "03-reverse-process": {"ex-ch3-forms": 1}}
    assert (tmp_path / "c" / "course.toml").read_text() == mine.read_text()  # the instructor's record
    for text, says in (
        ("[auto.\"ex-ch1-nul\"]\npoints = 1\ntests = 'x'\n", "no exercise labelled ex-ch1-nul"),
        ("[auto.\"ex-ch1-null\"]\npoints = 0\ntests = 'x'\n", "needs points"),
        ('[manual]\n"ex-ch3-forms" = "two"\n', "positive number of points"),
        ("[graded]\n", "unknown table"),
        ("[auto\n", "fix the TOML"),
    ):
        mine.write_text(text)
        with pytest.raises(C.DDNMInputError, match=says):
            C.export(tmp_path / "d", course=mine)
        assert not (tmp_path / "d").exists()  # nothing left behind


def test_export_keeps_an_edited_config_and_earlier_chapters_and_stable_ids(tmp_path):
    out = tmp_path / "c"
    C.export(out, [1])
    first = (out / "source" / "01-inverse-problems" / "01-inverse-problems.ipynb").read_text()
    C.export(out, [5])
    assert set(json.loads((out / "assignments.json").read_text())) == {"01-inverse-problems", "05-pseudo-inverse"}
    C.export(out, [1])
    assert (out / "source" / "01-inverse-problems" / "01-inverse-problems.ipynb").read_text() == first  # same ids
    config = out / "nbgrader_config.py"
    assert "exchange" in config.read_text() and "StudentFeedback" in config.read_text()
    config.write_text(config.read_text() + "c.ExecutePreprocessor.timeout = 1200\n")
    with pytest.raises(C.DDNMInputError, match="--force"):
        C.export(out, [1])
    assert config.read_text().endswith("1200\n")
    C.export(out, [1], force=True)
    assert config.read_text() == C.NBGRADER_CONFIG
    with pytest.raises(C.DDNMInputError, match="no notebook chapter 99"):
        C.export(tmp_path / "x", [1, 99])
    assert not (tmp_path / "x").exists()


def test_the_classroom_tools_say_they_need_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "COURSE", tmp_path / "classroom" / "course.toml")  # as in an installed package
    with pytest.raises(C.DDNMInputError, match="from a clone of the repository"):
        C.load_course()


AS_STUDENT = """
import sys

import nbgrader.exchange.default.fetch_feedback as ff
import nbgrader.exchange.default.submit as sub

name = sys.argv.pop(1)  # a simulated student: nbgrader takes the OS user name otherwise
sub.get_username = ff.get_username = lambda: name
from nbgrader.apps.nbgraderapp import main

sys.exit(main())
"""


@pytest.mark.timeout(1200)
def test_the_course_workflow_with_two_students(tmp_path):
    """Chapter 15's workflow end to end, in a temporary course folder: export, generate, release; two students
    fetch and submit through the exchange (which lives in the course folder); collect, autograde, feedback
    released and fetched, grades exported. The book's solutions get the auto-graded points, an untouched
    notebook none; nothing is written outside tmp_path (HOME is there too)."""
    pytest.importorskip("nbgrader")
    system_exchange = Path("/usr/local/share/nbgrader/exchange")
    existed = system_exchange.exists()
    course, a = tmp_path / "course", "05-pseudo-inverse"
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        DDNM_EDU_SCALE="cpu",
        OMP_NUM_THREADS="2",
        HOME=str(tmp_path / "home"),
    )
    (tmp_path / "home").mkdir()
    (tmp_path / "as_student.py").write_text(AS_STUDENT)

    def run(cwd, *args, student=None):
        cmd = (
            [sys.executable, str(tmp_path / "as_student.py"), student]
            if student
            else [sys.executable, "-m", "nbgrader"]
        )
        extra = ["--course", "ddnm-edu", f"--Exchange.root={course / 'exchange'}"] if student else []
        r = subprocess.run(cmd + list(args) + extra, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    summary = C.export(course, [5])
    run(course, "generate_assignment", a)
    run(course, "release_assignment", a)
    assert (course / "exchange" / "ddnm-edu" / "outbound" / a).is_dir()
    source = json.loads((course / "source" / a / f"{a}.ipynb").read_text())
    for student in ("alice", "bob"):
        home = tmp_path / student
        home.mkdir()
        run(home, "fetch_assignment", a, student=student)
        fetched = home / a / f"{a}.ipynb"
        if student == "alice":  # alice answers with the book's solutions; bob hands in the notebook untouched
            fetched.write_text(json.dumps(_fill(json.loads(fetched.read_text()), source)))
        run(home, "submit", a, student=student)
    run(course, "collect", a)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob"]
    run(course, "autograde", a)
    run(course, "generate_feedback", a)
    run(course, "release_feedback", a)
    for student in ("alice", "bob"):
        run(tmp_path / student, "fetch_feedback", a, student=student)
        pages = list((tmp_path / student / a / "feedback").rglob(f"{a}.html"))
        assert pages and all("HIDDEN TESTS" not in p.read_text() for p in pages), student
    run(course, "export")
    import csv

    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    auto = sum(COURSE.auto[label]["points"] for label in summary[a] if label in COURSE.auto)
    assert float(rows["alice"]["raw_score"]) == auto and float(rows["bob"]["raw_score"]) == 0
    assert float(rows["alice"]["max_score"]) == sum(summary[a].values())  # + the open question, graded by hand
    assert system_exchange.exists() == existed  # the exchange stayed in the course folder


#: Plausible wrong answers, per auto-graded exercise: code run after the book's own solution (so that the answer
#: variables hold a wrong value). Each must score 0 on its exercise, through real nbgrader.
WRONG: dict[str, list[str]] = {
    "ex-ch1-null": [
        "A1 = A1.T",
        "A1 = A1 * 2  # sums, not means",
        "basis = A1.T  # the row space, not the null space",
    ],
    "ex-ch2-half": [
        "t_half = {k: v + 1 for k, v in t_half.items()}",
        "t_half = {'linear': t_half['cosine'], 'cosine': t_half['linear']}",
        "t_half = {'linear': t_half['linear']}",
    ],
    "ex-ch3-x0": [
        "def x0_from_eps(x_t, eps, t):  # off by one timestep\n"
        "    ab = sched.alphas_cumprod[t - 1]\n"
        "    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()",
        "def x0_from_eps(x_t, eps, t):  # no square roots\n"
        "    ab = sched.alphas_cumprod[t]\n"
        "    return (x_t - (1 - ab) * eps) / ab",
        "def x0_from_eps(x_t, eps, t):  # the noise added, not removed\n"
        "    ab = sched.alphas_cumprod[t]\n"
        "    return (x_t + (1 - ab).sqrt() * eps) / ab.sqrt()",
        "def x0_from_eps(x_t, eps, t):  # not rescaled\n"
        "    ab = sched.alphas_cumprod[t]\n"
        "    return x_t - (1 - ab).sqrt() * eps",
    ],
    "ex-ch4-eta": [
        "pairs = {0.0: pairs[1.0], 1.0: pairs[0.0]}",
        "pairs = {0.0: [p * 1.01 for p in pairs[0.0]], 1.0: pairs[1.0]}",
        "pairs = {0.0: pairs[0.0], 1.0: [pairs[1.0][0], pairs[1.0][0]]}",
        "pairs = {0.0: pairs[0.0], 1.0: [de.sample(model, sched, x_T.shape, steps=10, eta=1.0, seed=s)"
        " for s in (0, 1)]}  # not from x_T",
    ],
    "ex-ch5-color": [
        "a_pinv = a_pinv.clone()\na_pinv[1, 0] += 0.25",
        "a_pinv = a.T  # transposed, not inverted",
        "a_pinv = a_pinv / 3",
    ],
    "ex-ch5-rowrank": ["P_sr2 = M.T", "P_sr2 = M.T / 4", "P_sr2 = M"],
    "ex-ch6-inpaint": [
        "op_in = ops.Inpainting(torch.ones_like(ops.Inpainting.random_mask(32, 0.5, seed=3)))\n"
        "range_x, null_x = x1, torch.zeros_like(x1)  # an operator that sees every pixel",
        "range_x, null_x = null_x, range_x",
        "null_x = torch.zeros_like(x1)",
    ],
    "ex-ch6-invisible": [
        "null_proj = Pc @ Mc  # the other projector",
        "null_proj = I48 - Mc.T @ Mc  # A^T, not A^+",
        "null_proj = torch.zeros(48, 48, dtype=torch.float64)",
    ],
    "ex-ch7-new": [
        "class ColumnSubsampling(de.LinearOperator):\n"
        "    def A(self, x):\n        return x[..., ::2]\n\n"
        "    def A_pinv(self, y):\n        return y.repeat_interleave(2, dim=-1)  # not the MP inverse",
        "class ColumnSubsampling(de.LinearOperator):\n"
        "    def A(self, x):\n        return x[..., 1::2]  # the other columns\n\n"
        "    def A_pinv(self, y):\n        x = torch.zeros(*y.shape[:-1], 2 * y.shape[-1], dtype=y.dtype)\n"
        "        x[..., 1::2] = y\n        return x",
        "class ColumnSubsampling(de.LinearOperator):\n"
        "    def A(self, x):\n        return x[..., ::2]\n\n"
        "    def A_pinv(self, y):\n        x = torch.zeros(*y.shape[:-1], 2 * y.shape[-1], dtype=y.dtype)\n"
        "        x[..., 1::2] = y  # into the wrong columns\n        return x",
    ],
    "ex-ch7-composite": [
        "P_gray_sr = M.T",
        "P_gray_sr = M",
        "P_gray_sr = 12 * M.T + 0.01",
        "P_gray_sr = torch.ones(12, 1) * 3  # copies, but three times too bright",
    ],
    "ex-ch8-cs": ["x_cs = cs.A_pinv(y_cs)  # consistent, but not DDNM", "x_cs = x_cs + 0.1", "x_cs = x_cs.flip(0)"],
    "ex-ch8-mean": [
        "mean = outs[:1]",
        "mean = outs.median(0, keepdim=True).values",
        "psnr_mean = psnr_outs.item()  # the samples' PSNR",
        "outs = x[2:3].repeat(len(outs), 1, 1, 1)  # its own 'samples'\n"
        "mean = outs.mean(0, keepdim=True)\npsnr_mean = de.metrics.psnr(mean, x[2:3]).item()",
    ],
    "ex-ch9-ddpm": ["first = first + 1", "first = float(first)", "first = first - 1"],
    "ex-ch9-deblur": [
        "deblur_psnr = {(r, 'DDNM+' if m == 'DDNM' else 'DDNM'): v for (r, m), v in deblur_psnr.items()}",
        "deblur_psnr = {k: v + 0.5 for k, v in deblur_psnr.items()}",
        "deblur_psnr = {k: v for k, v in deblur_psnr.items() if k[0] == 1e-4}",
    ],
    "ex-ch10-travel": ["sr_gain = -sr_gain", "sr_gain = sr_gain + 0.1", "sr_gain = torch.tensor(sr_gain)"],
    "ex-ch10-paper-nfe": [
        "def nfe_paper_formula(n, l):\n    return (l + 1) * n",
        "def nfe_paper_formula(n, l):\n    return n + l * (n - 1 - l)  # the first steps forgotten",
        "def nfe_paper_formula(n, l):\n    return n + l * (l + 1) // 2 + l * (n - l)  # off by one",
        "def nfe_paper_formula(n, l):\n    return float(n + l * (l + 1) // 2 + l * (n - 1 - l))",
    ],
    "ex-ch11-psnr": [
        "def my_psnr(a, b):  # no clipping\n"
        "    return 10 * torch.log10(4 / (a - b).double().pow(2).flatten(1).mean(1))",
        "def my_psnr(a, b):  # peak 1\n    a, b = a.clamp(-1, 1).double(), b.clamp(-1, 1).double()\n"
        "    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1))",
        "def my_psnr(a, b):  # one number for the batch\n"
        "    a, b = a.clamp(-1, 1).double(), b.clamp(-1, 1).double()\n"
        "    return 10 * torch.log10(4 / (a - b).pow(2).mean())",
    ],
    "ex-ch13-flops": [
        "spatial, mdta = mdta, spatial",
        "spatial = (H * W) ** 2 * C  # no factor 2",
        "mdta = 2 * H * W * C",
    ],
    "ex-ch13-rectify": [
        "r2 = f2  # not rectified",
        "r2 = op2.A_pinv(y2)  # consistent, but not rectify",
        "r2 = f2 - op2.range_part(f2)  # the null part only",
        "f2 = op2.A_pinv(y2)  # no network\nr2 = ops.rectify(op2, y2, f2)",
    ],
}


def _spoil(release: dict, source: dict, wrong: dict[str, str]) -> dict:
    """The book's solutions, with each ``wrong[label]`` run after the last solution cell of ``label``."""
    out = _fill(release, source)
    last = {}
    for c in out["cells"]:
        m = c["metadata"].get("nbgrader")
        if m and m["solution"] and c["cell_type"] == "code":
            last[m["grade_id"].rsplit("-solution-", 1)[0]] = c
    for label, code in wrong.items():
        last[label]["source"] += "\n" + code + "\n"
    return out


def test_every_auto_graded_exercise_has_a_table_of_wrong_answers_and_chapters_5_to_10_have_two():
    assert set(WRONG) == set(COURSE.auto)
    assert all(len(v) >= 3 for v in WRONG.values())
    chapters = {}
    for p in C.chapters():
        for label in C.exercises(json.loads(p.read_text())):
            if label in COURSE.auto:
                chapters.setdefault(int(p.name[:2]), []).append(label)
    assert all(len(chapters.get(n, [])) >= 2 for n in range(5, 11)), chapters


def _assigned(code: str) -> list[str]:
    """The names a piece of code assigns (``x = ...``, ``x += ...``, ``a, b = ...``)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            names |= {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    return sorted(names)


class _Kernel:
    """One Jupyter kernel that runs code cells and reports what nbgrader would score as failed: an error,
    or anything on stderr (nbgrader gives such a test cell 0 points)."""

    def __init__(self, cwd: Path):
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ, PYTHONPATH=str(ROOT), DDNM_EDU_SCALE="cpu", OMP_NUM_THREADS="2")
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)

    def run(self, code: str, timeout: int = 600) -> list[str]:
        msg_id = self.kc.execute(code)
        failed = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                failed.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "stream" and content["name"] == "stderr":
                failed.append(content["text"])
            elif kind == "status" and content["execution_state"] == "idle":
                return failed

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.mark.timeout(2400)
def test_graders_score_every_wrong_answer_zero(tmp_path):
    """Every wrong answer of ``WRONG`` fails its grader, hidden tests included, without executing a chapter
    once per wrong answer. Each chapter's nbgrader source (solutions and hidden tests in place) runs once in
    a kernel; then, for each wrong answer, the exercise's cells run again with the wrong answer after its
    last solution cell, through its grader cell, which must fail as nbgrader would score it (an error, or
    anything on stderr); then the names the wrong answer reassigned are restored and the exercise's cells
    run again, which must pass. Real nbgrader grades the book's solutions of every chapter (above) and
    spoiled submissions of chapters 5-6 and the course workflow (``test_nbgrader_generate_and_autograde``,
    ``test_the_course_workflow_with_two_students``)."""
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    summary = C.export(course)
    checked = 0
    for a, labels in summary.items():
        auto = [label for label in labels if label in COURSE.auto]
        if not auto:
            continue
        cells = [
            c
            for c in json.loads((course / "source" / a / f"{a}.ipynb").read_text())["cells"]
            if c["cell_type"] == "code"
        ]
        for c in cells:
            c["source"] = "".join(c["source"])
        ids = [c["metadata"].get("nbgrader", {}).get("grade_id", "") for c in cells]
        kernel = _Kernel(course / "source" / a)
        try:
            kernel.run("import copy as _copy")
            for i, c in enumerate(cells):
                failed = kernel.run(c["source"])
                assert not (failed and ids[i].endswith("-test")), (a, ids[i], failed)  # the book's solutions pass
            for label in auto:
                sols = [i for i, g in enumerate(ids) if g.startswith(f"{label}-solution")]
                test = ids.index(f"{label}-test")
                span = range(sols[0], test + 1)  # the exercise's cells, through its grader
                for code in WRONG[label]:
                    # keep what the wrong answer reassigns (it may replace an earlier cell's result)
                    kernel.run(
                        f"_saved = {{k: _copy.deepcopy(v) for k, v in globals().items() if k in {_assigned(code)!r}}}"
                    )
                    for i in span:  # as _spoil: the wrong answer runs after the last solution cell
                        failed = kernel.run(cells[i]["source"] + (f"\n{code}\n" if i == sols[-1] else ""))
                    assert failed, (label, code)  # the grader cell fails
                    kernel.run("globals().update(_saved)")
                    for i in span:
                        failed = kernel.run(cells[i]["source"])
                    assert not failed, (label, "the book's answer again", failed)
                    checked += 1
        finally:
            kernel.close()
    assert checked == sum(len(v) for v in WRONG.values())
