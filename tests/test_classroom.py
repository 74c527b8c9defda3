"""The classroom edition: nbgrader assignments exported from the book's exercises, graded end to end with
the real nbgrader, and the student edition of the book's sources (no solutions left)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddnm_edu.tools import classroom as C

ROOT = Path(__file__).resolve().parent.parent
COURSE = C.load_course()  # classroom/course.toml: what is graded, and how


def _book(n: int) -> dict:
    return json.loads(C.chapter_path(n).read_text())


def test_every_chapter_1_to_10_has_an_auto_graded_exercise_and_every_label_exists():
    labels = {}
    for p in C.chapters():
        for label in C.exercises(json.loads(p.read_text())):
            labels[label] = int(p.name[:2])
    for label in list(COURSE.auto) + list(COURSE.manual):
        assert label in labels, f"{label} is graded but no chapter has that exercise"
    graded_chapters = {labels[label] for label in COURSE.auto}
    assert set(range(1, 11)) <= graded_chapters, sorted(graded_chapters)


def test_pieces_split_solutions_at_their_fences():
    nb = _book(5)
    ps = C.pieces(nb)
    sols = {p.solution for p in ps if p.solution}
    assert sols == set(C.exercises(nb))
    for p in ps:
        assert "solution-start" not in p.text and "solution-end" not in p.text
    # the book's solution prose is inside, the exercise statements outside
    inside = "\n".join(p.text for p in ps if p.solution)
    outside = "\n".join(p.text for p in ps if not p.solution)
    assert "A - A A^\\dagger A = A - A = 0" in inside and "{exercise}" in outside


@pytest.mark.parametrize("n", range(1, 11))
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
    src, points = C.assignment_notebook(_book(4))
    assert points == {"ex-ch4-color": 2, "ex-ch4-rowrank": 2}
    meta = [c["metadata"].get("nbgrader") for c in src["cells"]]
    tests = [m for m in meta if m and m["grade"] and not m["solution"]]
    assert [(m["grade_id"], m["points"]) for m in tests] == [("ex-ch4-color-test", 2)]
    answers = [m for m in meta if m and m["grade"] and m["solution"]]
    assert [(m["grade_id"], m["points"]) for m in answers] == [("ex-ch4-rowrank-answer", 2)]
    for c in src["cells"]:
        m = c["metadata"].get("nbgrader")
        if m and m["solution"] and c["cell_type"] == "code":
            assert c["source"].startswith("### BEGIN SOLUTION") and "### END SOLUTION" in c["source"]
    text = json.dumps(src)
    assert "{exercise}" not in text and "**Exercise (ex-ch4-color): Colorization by hand**" in text


# --------------------------------------------------------------------------- the real nbgrader
def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT), DDNM_EDU_SCALE="cpu", OMP_NUM_THREADS="2")
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nbgrader"]
    r = subprocess.run(cmd + list(args), cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _fill(release: dict, source: dict, edit=None) -> dict:
    """A student who answers every solution cell with the book's solution code (``edit`` may spoil one)."""
    sols = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}
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
    summary = C.export(course, [4, 5])
    assert set(summary) == {"04-pseudo-inverse", "05-range-null"}
    for a in summary:
        _nbgrader(course, "generate_assignment", a, "--force")
        release = json.loads((course / "release" / a / f"{a}.ipynb").read_text())
        source = json.loads((course / "source" / a / f"{a}.ipynb").read_text())
        text = json.dumps(release)
        # no solution, no hidden test left in the student version
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        elsewhere = "".join("".join(c["source"]) for c in source["cells"]
                            if not c["metadata"].get("nbgrader", {}).get("solution"))
        for c in source["cells"]:
            m = c["metadata"].get("nbgrader")
            if m and m["solution"] and c["cell_type"] == "code":
                body = re.sub(r"### (BEGIN|END) SOLUTION\n?", "", c["source"])
                for line in body.splitlines():  # every solution line that the statement or tests do not show
                    if len(line.strip()) > 12 and line.strip() not in elsewhere:
                        assert json.dumps(line.strip())[1:-1] not in text, line
        assert "a.T / (a @ a.T)" not in text and "mask * x1, (1 - mask) * x1" not in text

        def wrong(grade_id, code):  # A^dagger with one wrong entry; ch5's parts for an operator that sees all
            if grade_id.startswith("ex-ch4-color"):
                return code + "\na_pinv = a_pinv.clone()\na_pinv[1, 0] += 0.25\n"
            if grade_id.startswith("ex-ch5-inpaint"):
                return ("op_in = ops.Inpainting(torch.ones_like(ops.Inpainting.random_mask(32, 0.5, seed=3)))\n"
                        "range_x, null_x = x1, torch.zeros_like(x1)\n")
            return code

        subs = {"perfect": _fill(release, source), "untouched": release, "wrong": _fill(release, source, wrong)}
        for student, nb in subs.items():
            d = course / "submitted" / student / a
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{a}.ipynb").write_text(json.dumps(nb))
    for a in summary:
        r = _nbgrader(course, "autograde", a, "--create", "--force")
        assert "cannot be converted to a float" not in r.stdout + r.stderr  # test cells end without a value
    auto = {a: {f"{label}-test": spec["points"] for label, spec in COURSE.auto.items() if label in summary[a]}
            for a in summary}
    # feedback shows the student what failed in one line, without the hidden tests or a library traceback
    _nbgrader(course, "generate_feedback", "04-pseudo-inverse", "--student", "wrong", "--force")
    page = (course / "feedback" / "wrong" / "04-pseudo-inverse" / "04-pseudo-inverse.html").read_text()
    assert "CheckFailed: not the Moore-Penrose inverse" in page  # ddnm_edu.check's message, in one line
    assert "Traceback (most recent call last)" not in page and "check.py" not in page
    assert "HIDDEN TESTS" not in page and "torch.linalg.pinv(torch.full" not in page
    assert "(hidden tests)" in page
    for a, tests in auto.items():
        perfect, untouched, wrong = (_scores(course, a, s) for s in ("perfect", "untouched", "wrong"))
        for gid, pts in tests.items():
            assert perfect[gid] == (pts, pts), (a, gid, perfect)  # the book's own solution: full points
            assert untouched[gid][0] == 0, (a, gid, untouched)  # untouched: zero, and autograde did not crash
        lost = {gid: tests[gid] - wrong[gid][0] for gid in tests}
        spoiled = {"04-pseudo-inverse": "ex-ch4-color-test", "05-range-null": "ex-ch5-inpaint-test"}[a]
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
    r = subprocess.run([sys.executable, "-m", "ddnm_edu.tools.cli", "classroom", "export", str(tmp_path / "c"),
                        "--chapters", "1", "10"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert "ex-ch1-null (2 pt)" in r.stdout and "ex-ch10-psnr (2 pt)" in r.stdout
    assert (tmp_path / "c" / "nbgrader_config.py").exists()
    assert sorted(p.name for p in (tmp_path / "c" / "source").iterdir()) == ["01-inverse-problems", "10-evaluation"]
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
    mine.write_text("[auto.\"ex-ch1-null\"]\npoints = 5\ntests = '''\nde.check.null_basis(basis, A1)\n'''\n"
                    "[manual]\n\"ex-ch3-forms\" = 1\n")
    summary = C.export(tmp_path / "c", course=mine)
    assert summary == {"01-inverse-problems": {"ex-ch1-null": 5}, "03-reverse-process": {"ex-ch3-forms": 1}}
    assert (tmp_path / "c" / "course.toml").read_text() == mine.read_text()  # the instructor's record
    for text, says in (("[auto.\"ex-ch1-nul\"]\npoints = 1\ntests = 'x'\n", "no exercise labelled ex-ch1-nul"),
                       ("[auto.\"ex-ch1-null\"]\npoints = 0\ntests = 'x'\n", "needs points"),
                       ("[manual]\n\"ex-ch3-forms\" = \"two\"\n", "positive number of points"),
                       ("[graded]\n", "unknown table"), ("[auto\n", "fix the TOML")):
        mine.write_text(text)
        with pytest.raises(C.DDNMInputError, match=says):
            C.export(tmp_path / "d", course=mine)
        assert not (tmp_path / "d").exists()  # nothing left behind


def test_export_keeps_an_edited_config_and_earlier_chapters_and_stable_ids(tmp_path):
    out = tmp_path / "c"
    C.export(out, [1])
    first = (out / "source" / "01-inverse-problems" / "01-inverse-problems.ipynb").read_text()
    C.export(out, [4])
    assert set(json.loads((out / "assignments.json").read_text())) == {"01-inverse-problems", "04-pseudo-inverse"}
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
    """Chapter 13's workflow end to end, in a temporary course folder: export, generate, release; two students
    fetch and submit through the exchange (which lives in the course folder); collect, autograde, feedback
    released and fetched, grades exported. The book's solutions get the auto-graded points, an untouched
    notebook none; nothing is written outside tmp_path (HOME is there too)."""
    pytest.importorskip("nbgrader")
    system_exchange = Path("/usr/local/share/nbgrader/exchange")
    existed = system_exchange.exists()
    course, a = tmp_path / "course", "04-pseudo-inverse"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(ROOT), DDNM_EDU_SCALE="cpu", OMP_NUM_THREADS="2", HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "as_student.py").write_text(AS_STUDENT)

    def run(cwd, *args, student=None):
        cmd = [sys.executable, str(tmp_path / "as_student.py"), student] if student else [
            sys.executable, "-m", "nbgrader"]
        extra = ["--course", "ddnm-edu", f"--Exchange.root={course / 'exchange'}"] if student else []
        r = subprocess.run(cmd + list(args) + extra, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    summary = C.export(course, [4])
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
    auto = sum(pts for label, pts in summary[a].items() if label in COURSE.auto)
    assert float(rows["alice"]["raw_score"]) == auto and float(rows["bob"]["raw_score"]) == 0
    assert float(rows["alice"]["max_score"]) == sum(summary[a].values())  # + the open question, graded by hand
    assert system_exchange.exists() == existed  # the exchange stayed in the course folder
