"""The classroom edition, made from the book's own notebooks (the single source of every exercise).

    ddnm-edu classroom export OUT/ [--chapters 5 6 8]    # an nbgrader course folder
    ddnm-edu classroom student-book OUT/                 # the book's sources without solutions

The book writes an exercise as a sphinx-exercise ``{exercise}`` block with a ``:label:``, followed by a
gated solution: a ``{solution-start} <label>`` fence, prose and code cells, and a ``{solution-end}``
fence. This module splits a chapter at those fences and

* **export**: writes ``OUT/source/<chapter>/<chapter>.ipynb`` for nbgrader -- each solution's code
  inside ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (its prose as comments there), followed, for
  the exercises the course file grades automatically (``classroom/course.toml`` by default, outside the
  package), by an auto-graded test cell with points (answers checked with ``ddnm_edu.check``; ``### BEGIN
  HIDDEN TESTS`` where a visible test would give the answer away), and, for its open questions, a manually
  graded answer cell -- plus a minimal ``nbgrader_config.py``. ``nbgrader generate_assignment <chapter>``
  then writes the student version.
* **student-book**: a copy of the book's sources (``_config.yml``, ``_toc.yml``, ``book/``) with every
  solution removed, for ``make book-student``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DDNMInputError
from .command import CommandParser, run_command
from .myst import plain_markdown

ROOT = Path(__file__).resolve().parents[2]  # the repository (book/ beside ddnm_edu/)
BOOK = ROOT / "book"

EXERCISE_RE = re.compile(r"```\{exercise\}\s*(?P<title>[^\n]*)\n:label:\s*(?P<label>\S+)")
START_RE = re.compile(r"`{3,}\{solution-start\}\s*(?P<label>\S+)[^\n]*\n(?::[^\n]*\n)*`{3,}[ \t]*\n?")
END_RE = re.compile(r"`{3,}\{solution-end\}[^\n]*\n`{3,}[ \t]*\n?")

# --------------------------------------------------------------------------- what is graded, and how
#: the default course file: graded exercises, points and tests. It is the instructor's, in the repository
#: and in the course folder that ``export`` writes -- never in the installed package.
COURSE = ROOT / "classroom" / "course.toml"


@dataclass
class Course:
    """Which exercises a course grades: ``auto`` label -> {points, tests} (an auto-graded test cell after the
    solution; tests check the answer with ``ddnm_edu.check``), ``manual`` label -> points (an answer cell)."""

    auto: dict[str, dict]
    manual: dict[str, int]
    source: Path


def load_course(path: Path | None = None) -> Course:
    """Read a course file (TOML, laid out like ``classroom/course.toml``); one clear error when it is wrong."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path) if path else COURSE
    if not path.is_file():
        hint = (
            " The classroom tools work from a clone of the repository (book/ and classroom/), not from an "
            "installed package."
            if path == COURSE
            else ""
        )
        raise DDNMInputError(f"course file {path} not found.{hint}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DDNMInputError(f"course file {path}: {e}; fix the TOML.") from None
    unknown = set(raw) - {"auto", "manual"}
    if unknown:
        raise DDNMInputError(
            f'course file {path}: unknown table(s) {sorted(unknown)}; use [auto."<label>"] and [manual].'
        )
    auto, manual = raw.get("auto", {}), raw.get("manual", {})
    for label, spec in auto.items():
        if (
            not isinstance(spec, dict)
            or set(spec) != {"points", "tests"}
            or type(spec["points"]) is not int
            or spec["points"] <= 0
            or not isinstance(spec["tests"], str)
        ):
            raise DDNMInputError(
                f'course file {path}: [auto."{label}"] needs points = <positive integer> and '
                "tests = <a multi-line string>."
            )
    for label, pts in manual.items():
        if type(pts) is not int or pts <= 0:
            raise DDNMInputError(f'course file {path}: [manual] "{label}" = {pts!r}; use a positive number of points.')
    known = {label for p in chapters() for label in exercises(json.loads(p.read_text()))}
    missing = sorted((set(auto) | set(manual)) - known)
    if missing:
        raise DDNMInputError(f"course file {path}: no exercise labelled {', '.join(missing)} in the book.")
    return Course({k: dict(v) for k, v in auto.items()}, dict(manual), path)


# --------------------------------------------------------------------------- reading a chapter
@dataclass
class Piece:
    """A cell, or the part of a markdown cell between solution fences."""

    kind: str  # "markdown" | "code"
    text: str
    solution: str | None  # the label whose solution this is part of, or None
    cell: dict = field(default_factory=dict)  # the original cell (metadata, tags)


def chapters() -> list[Path]:
    return sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))


def chapter_path(number: int) -> Path:
    for p in chapters():
        if int(p.name[:2]) == number:
            return p
    raise DDNMInputError(f"no notebook chapter {number}; chapters: {', '.join(p.name[:2] for p in chapters())}")


def exercises(nb: dict) -> dict[str, str]:
    """label -> title of every exercise in a notebook, in order."""
    out = {}
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            for m in EXERCISE_RE.finditer("".join(c["source"])):
                out[m["label"]] = m["title"].strip()
    return out


def pieces(nb: dict) -> list[Piece]:
    """The notebook as pieces, each marked with the solution it belongs to (fences removed)."""
    out: list[Piece] = []
    current: str | None = None
    for c in nb["cells"]:
        text = "".join(c["source"])
        if c["cell_type"] != "markdown":
            out.append(Piece(c["cell_type"], text, current, c))
            continue
        pos = 0
        while pos <= len(text):
            m = (END_RE if current else START_RE).search(text, pos)
            chunk = text[pos : m.start() if m else len(text)]
            if chunk.strip():
                out.append(Piece("markdown", chunk.strip("\n"), current, c))
            if not m:
                break
            current = None if current else m["label"]
            pos = m.end()
    if current:
        raise ValueError(f"solution {current!r} has no solution-end fence")
    return out


def _cell(kind: str, text: str, metadata: dict) -> dict:
    """A new cell; its id is its nbgrader grade_id, so that ids stay the same from one export to the next."""
    c = {"cell_type": kind, "id": metadata["nbgrader"]["grade_id"], "metadata": metadata, "source": text}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def _nbgrader(grade_id: str, solution: bool, grade: bool, points: int | None = None, locked: bool = False) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


# --------------------------------------------------------------------------- the two editions
def student_notebook(nb: dict) -> dict:
    """The chapter without its solutions (prose and code), for the student edition of the book."""
    out = copy.deepcopy(nb)
    out["cells"] = []
    for p in pieces(nb):
        if p.solution is not None:
            continue
        c = copy.deepcopy(p.cell)
        c["source"] = p.text
        out["cells"].append(c)
    return out


@functools.lru_cache(maxsize=1)
def _default_course(mtime: int | None) -> Course:
    """The repository's course file, read (and its labels checked against every chapter) once per version."""
    return load_course()


def assignment_notebook(nb: dict, course: Course | None = None) -> tuple[dict, dict]:
    """(nbgrader source notebook, {label: points}) for one chapter, graded as ``course`` says."""
    course = course or _default_course(COURSE.stat().st_mtime_ns if COURSE.is_file() else None)
    GRADED, MANUAL = course.auto, course.manual
    out = copy.deepcopy(nb)
    out["cells"] = []
    points: dict[str, int] = {}
    prose: dict[str, list[str]] = {}
    ps = pieces(nb)
    for k, p in enumerate(ps):
        if p.solution is None:
            c = copy.deepcopy(p.cell)
            c["source"] = plain_markdown(p.text) if p.kind == "markdown" else p.text
            if p.kind == "code":
                c.update(outputs=[], execution_count=None)
            out["cells"].append(c)
            continue
        label = p.solution
        if p.kind == "markdown":  # the book's explanation: the instructor's reference, hidden from students
            prose.setdefault(label, []).append(p.text)
        else:
            # the explanation goes into the solution as comments -- unless it is the reference answer of an
            # open question, which goes into the manually graded answer cell below
            said = [] if label in MANUAL else prose.pop(label, [])
            comment = "".join(
                f"# {line}\n".replace("# \n", "#\n") for line in plain_markdown("\n\n".join(said)).splitlines()
            )
            body = f"### BEGIN SOLUTION\n{comment}{p.text.rstrip()}\n### END SOLUTION\n"
            out["cells"].append(_cell("code", body, _nbgrader(f"{label}-solution-{k}", solution=True, grade=False)))
        last = k + 1 == len(ps) or ps[k + 1].solution != label
        if last:
            rest = prose.pop(label, [])
            if label in MANUAL:
                answer = plain_markdown("\n\n".join(rest))
                out["cells"].append(
                    _cell(
                        "markdown",
                        f"**Your answer to {label}** ({MANUAL[label]} points, graded "
                        "by hand): write it in the cell below, in words and LaTeX ($...$).",
                        _nbgrader(f"{label}-answer-head", solution=False, grade=False, locked=True),
                    )
                )
                out["cells"].append(
                    _cell(
                        "markdown",
                        f"### BEGIN SOLUTION\n{answer}\n### END SOLUTION\n",
                        _nbgrader(f"{label}-answer", solution=True, grade=True, points=MANUAL[label]),
                    )
                )
                points[label] = MANUAL[label]
            if label in GRADED:
                spec = GRADED[label]
                tests = textwrap.dedent(spec["tests"]).strip("\n")
                # the cell ends on a statement: it has no value for nbgrader to try to score as a number
                body = f"# Auto-graded: {label} ({spec['points']} points)\n{tests}\npass\n"
                out["cells"].append(
                    _cell(
                        "code",
                        body,
                        _nbgrader(f"{label}-test", solution=False, grade=True, points=spec["points"], locked=True),
                    )
                )
                points[label] = points.get(label, 0) + spec["points"]
    if points:
        auto = sum(GRADED[label]["points"] for label in points if label in GRADED)
        head = (
            f"**Assignment: {_title(nb)}** — {sum(points.values())} points: {auto} auto-graded (the "
            "*Auto-graded* cells check your answers; run them to see what they check, some checks are "
            f"hidden until grading), {sum(points.values()) - auto} graded by hand (the *Your answer* "
            "cells).\n\nFill in every cell that says `YOUR CODE HERE` or `YOUR ANSWER HERE`, and keep the "
            "names the exercises ask for. Do not delete, copy or move cells. Before you submit: restart the "
            "kernel and run all cells, top to bottom. The reading and its code are the book's chapter; the "
            "book's equation and reference labels appear as (eq-...) and [key]."
        )
        out["cells"].insert(
            0, _cell("markdown", head, _nbgrader("assignment-header", solution=False, grade=False, locked=True))
        )
    out["metadata"] = {k: v for k, v in nb["metadata"].items() if k in ("kernelspec", "language_info")}
    return out, points


def _title(nb: dict) -> str:
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^# (.+)$", "".join(c["source"]), re.M)
            if m:
                return m[1].strip()
    return "a chapter"


NBGRADER_CONFIG = """\
# nbgrader configuration for the ddnm-edu classroom edition (written by `ddnm-edu classroom export`; export
# refuses to overwrite it once edited, unless --force).
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "ddnm-edu"
# the exchange (release, fetch, submit, collect) lives in this course folder, not in a system folder
c.Exchange.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")
# the chapters run the pretrained models on a CPU: allow a few minutes per cell
c.ExecutePreprocessor.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
# feedback for students: hidden tests removed (nbgrader's ClearHiddenTests), each error as one line
# (no traceback into the library)
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "nbgrader.preprocessors.ClearHiddenTests",
                                    "ddnm_edu.tools.feedback.StudentFeedback",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]
"""


def export(out: Path, numbers: list[int] | None = None, course: Path | None = None, force: bool = False) -> dict:
    """Write an nbgrader course folder; returns {assignment: {label: points}} for the chapters written.

    Everything is checked before anything is written (a bad chapter or course file leaves no folder behind).
    An existing ``nbgrader_config.py`` that differs from the one export writes (an instructor's edit) is kept
    unless ``force``; ``assignments.json`` keeps the chapters exported earlier."""
    out = Path(out)
    spec = load_course(course)
    paths = [chapter_path(n) for n in numbers] if numbers else chapters()
    made = {p.stem: assignment_notebook(json.loads(p.read_text()), spec) for p in paths}
    made = {name: v for name, v in made.items() if v[1]}
    if not made:
        raise DDNMInputError(f"the course file grades no exercise in chapter(s) {numbers}; nothing to export.")
    config = out / "nbgrader_config.py"
    if config.exists() and config.read_text() != NBGRADER_CONFIG and not force:
        raise DDNMInputError(
            f"{config} has been edited; export would overwrite it. Use --force to replace it, "
            "or export into another folder."
        )
    (out / "source").mkdir(parents=True, exist_ok=True)
    config.write_text(NBGRADER_CONFIG)
    shutil.copy(spec.source, out / "course.toml")  # the instructor's record of what is graded, and how
    index = out / "assignments.json"
    summary = json.loads(index.read_text()) if index.exists() else {}
    for name, (src, points) in made.items():
        folder = out / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ipynb").write_text(json.dumps(src, indent=1, ensure_ascii=False) + "\n")
        summary[name] = points
    index.write_text(json.dumps(dict(sorted(summary.items())), indent=2) + "\n")
    return {name: points for name, (_, points) in made.items()}


#: chapters for instructors only: not in the student edition (the graded exercises, the workflow)
INSTRUCTOR_ONLY = ("15-teaching",)


def student_book(out: Path) -> Path:
    """A copy of the book's sources with every solution removed; build it with jupyter-book."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(BOOK, out / "book", ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    cfg["title"] = f"{cfg['title']} (student edition)"
    # no way back to the notebooks with solutions: no launch buttons (they open the repository's
    # notebooks), no repository or issue links
    for key in ("launch_buttons", "repository"):
        cfg.pop(key, None)
    # share the book's execution cache: chapters whose code the edition keeps are not executed again
    cfg.setdefault("execute", {})["cache"] = str(ROOT / "_build" / ".jupyter_cache")
    cfg.setdefault("html", {}).update(use_repository_button=False, use_issues_button=False, use_edit_page_button=False)
    (out / "_config.yml").write_text(
        "# the student edition (ddnm-edu classroom student-book)\n"
        + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    )
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        part["chapters"] = [c for c in part["chapters"] if Path(c["file"]).name not in INSTRUCTOR_ONLY]
    toc["parts"] = [p for p in toc["parts"] if p["chapters"]]
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    for name in INSTRUCTOR_ONLY:
        for path in (out / "book").glob(f"{name}.*"):
            path.unlink()
    for path in (out / "book").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        path.write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n")
    for path in (out / "book").glob("*.md"):  # Markdown chapters: drop gated solutions the same way
        text = path.read_text()
        kept, pos, current = [], 0, None
        while True:
            m = (END_RE if current else START_RE).search(text, pos)
            if not current:
                kept.append(text[pos : m.start() if m else len(text)])
            if not m:
                break
            current = None if current else m["label"]
            pos = m.end()
        path.write_text("".join(kept))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = CommandParser(prog="ddnm-edu classroom", description=__doc__)
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("export", help="an nbgrader course folder built from the book's exercises")
    e.add_argument("out", type=Path)
    e.add_argument("--chapters", type=int, nargs="+", help="chapter numbers (default: every chapter with exercises)")
    e.add_argument(
        "--course",
        type=Path,
        default=None,
        help="course file: which exercises are graded, points, tests (default: the repository's "
        "classroom/course.toml; copy it to change them)",
    )
    e.add_argument("--force", action="store_true", help="replace an edited nbgrader_config.py")
    s = sub.add_parser("student-book", help="the book's sources without solutions (then: jupyter-book build OUT)")
    s.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    if args.what == "export":
        summary = export(args.out, args.chapters, args.course, args.force)
        for name, pts in summary.items():
            print(f"{name}: " + ", ".join(f"{k} ({v} pt)" for k, v in pts.items()))
        print(f"wrote {args.out}/source/; next: cd {args.out} && nbgrader generate_assignment <chapter>")
    else:
        print(f"wrote {student_book(args.out)}; build it with: jupyter-book build {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command("ddnm-edu classroom", main))
