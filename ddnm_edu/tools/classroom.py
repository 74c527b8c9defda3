"""The classroom edition, made from the book's own notebooks (the single source of every exercise).

    ddnm-edu classroom export OUT/ [--chapters 4 5 7]    # an nbgrader course folder
    ddnm-edu classroom student-book OUT/                 # the book's sources without solutions

The book writes an exercise as a sphinx-exercise ``{exercise}`` block with a ``:label:``, followed by a
gated solution: a ``{solution-start} <label>`` fence, prose and code cells, and a ``{solution-end}``
fence. This module splits a chapter at those fences and

* **export**: writes ``OUT/source/<chapter>/<chapter>.ipynb`` for nbgrader -- each solution's code
  inside ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (its prose as comments there), followed, for
  the exercises in :data:`GRADED`, by an auto-graded test cell with points (answers checked with
  ``ddnm_edu.check``; ``### BEGIN HIDDEN TESTS`` where a visible test would give the answer away),
  and, for the open questions in :data:`MANUAL`, a manually graded answer cell -- plus a minimal
  ``nbgrader_config.py``. ``nbgrader generate_assignment <chapter>`` then writes the student version.
* **student-book**: a copy of the book's sources (``_config.yml``, ``_toc.yml``, ``book/``) with every
  solution removed, for ``make book-student``.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandParser, DDNMInputError, run_command

ROOT = Path(__file__).resolve().parents[2]  # the repository (book/ beside ddnm_edu/)
BOOK = ROOT / "book"

EXERCISE_RE = re.compile(r"```\{exercise\}\s*(?P<title>[^\n]*)\n:label:\s*(?P<label>\S+)")
EXERCISE_BLOCK_RE = re.compile(r"```\{exercise\}[ \t]*(?P<title>[^\n]*)\n:label:[ \t]*(?P<label>\S+)[ \t]*\n"
                               r"(?P<body>.*?)\n```[ \t]*(?:\n|$)", re.S)
START_RE = re.compile(r"`{3,}\{solution-start\}\s*(?P<label>\S+)[^\n]*\n(?::[^\n]*\n)*`{3,}[ \t]*\n?")
END_RE = re.compile(r"`{3,}\{solution-end\}[^\n]*\n`{3,}[ \t]*\n?")

# --------------------------------------------------------------------------- what is graded, and how
#: label -> points and the test code (run after the student's solution cell, in the chapter's namespace).
#: Tests check the *answer* with ddnm_edu.check, never the code that produced it.
GRADED: dict[str, dict] = {
    "ex-ch1-null": dict(points=2, tests='''
        de.check.close(A1, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], "A1")
        de.check.null_basis(basis, A1)
    '''),
    "ex-ch2-half": dict(points=2, tests='''
        assert set(t_half) == {"linear", "cosine"}, "t_half needs one entry per schedule"
        ### BEGIN HIDDEN TESTS
        for _name, _s in (("linear", sched), ("cosine", cos)):
            de.check.close(t_half[_name], int((_s.alphas_cumprod.sqrt() < 0.5).nonzero()[0]), f"t_half[{_name!r}]")
        ### END HIDDEN TESTS
    '''),
    "ex-ch3-eta": dict(points=2, tests='''
        assert torch.equal(*pairs[0.0]), "with eta = 0 the two samples should be identical"
        assert not torch.equal(*pairs[1.0]), "with eta = 1 the two samples should differ"
        ### BEGIN HIDDEN TESTS
        _ref = de.sample(model, sched, x_T.shape, steps=10, eta=0.0, seed=0, x_T=x_T)
        de.check.close(pairs[0.0][0], _ref, "the eta = 0 sample", atol=1e-5)
        ### END HIDDEN TESTS
    '''),
    "ex-ch4-color": dict(points=2, tests='''
        de.check.pinv(a_pinv, a)
        ### BEGIN HIDDEN TESTS
        de.check.close(a_pinv, torch.linalg.pinv(torch.full((1, 3), 1 / 3, dtype=torch.float64)), "a_pinv")
        ### END HIDDEN TESTS
    '''),
    "ex-ch5-inpaint": dict(points=2, tests='''
        de.check.decomposition(op_in, x1, range_x, null_x)
    '''),
    "ex-ch6-new": dict(points=3, tests='''
        de.check.operator(ColumnSubsampling(), (1, 4, 4), reference=lambda v: v[..., ::2])
    '''),
    "ex-ch7-cs": dict(points=3, tests='''
        de.check.consistent(cs, x_cs, y_cs)
        ### BEGIN HIDDEN TESTS
        _cs = ops.CompressedSensing(0.25, seed=0)
        de.check.close(x_cs, de.ddnm(fm, sched, _cs, _cs.A(x[:2]), steps=cfg.steps), "x_cs", atol=1e-5)
        ### END HIDDEN TESTS
    '''),
    "ex-ch8-ddpm": dict(points=2, tests='''
        assert isinstance(first, int), "first should be the timestep, an int"
        ### BEGIN HIDDEN TESTS
        _first = next(t for t in range(999, 0, -1) if de.lambda_and_std(
            float(sched.step_coefs(t, t - 1, 1.0, kind="ddpm").sigma),
            float(sched.step_coefs(t, t - 1, 1.0, kind="ddpm").c_x0), 0.1)[0] < 1)
        de.check.close(first, _first, "first")
        ### END HIDDEN TESTS
    '''),
    "ex-ch9-travel": dict(points=2, tests='''
        assert isinstance(sr_gain, float), "sr_gain should be a float (use .item())"
        ### BEGIN HIDDEN TESTS
        _y = sr4.A(x)
        _tt = de.ddnm_plus(fm, sched, sr4, _y, steps=cfg.steps,
                           settings=de.SamplerSettings(travel_length=5, travel_repeat=2))
        _plain = de.ddnm_plus(fm, sched, sr4, _y, steps=_tt.nfe)
        _d = (de.metrics.psnr(_tt.x0_hat, x) - de.metrics.psnr(_plain.x0_hat, x)).mean().item()
        de.check.close(sr_gain, _d, "sr_gain (travel minus plain, at equal NFE)", atol=1e-3)
        ### END HIDDEN TESTS
    '''),
    "ex-ch10-psnr": dict(points=2, tests='''
        _g = torch.Generator().manual_seed(1)
        _a, _b = torch.rand(3, 1, 8, 8, generator=_g) * 2 - 1, torch.rand(3, 1, 8, 8, generator=_g) * 2 - 1
        de.check.close(my_psnr(_a, _b), de.metrics.psnr(_a, _b), "my_psnr(a, b)", atol=1e-4)
    '''),
    "ex-ch11-flops": dict(points=1, tests='''
        ### BEGIN HIDDEN TESTS
        de.check.close(spatial, 2 * (256 * 256) ** 2 * 48, "spatial", rtol=1e-9)
        de.check.close(mdta, 2 * 256 * 256 * 48 ** 2, "mdta", rtol=1e-9)
        ### END HIDDEN TESTS
    '''),
    "ex-ch11-rectify": dict(points=2, tests='''
        de.check.consistent(op2, r2, y2)
        de.check.close(r2, ops.rectify(op2, y2, f2), "r2", atol=1e-5)
    '''),
}
#: Open questions: label -> points of a manually graded answer cell (the book's prose is the reference answer).
MANUAL: dict[str, int] = {"ex-ch3-forms": 2, "ex-ch4-rowrank": 2, "ex-ch5-invisible": 1, "ex-ch7-mean": 2,
                          "ex-ch8-deblur": 2, "ex-ch11-choice": 2}


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
            chunk = text[pos:m.start() if m else len(text)]
            if chunk.strip():
                out.append(Piece("markdown", chunk.strip("\n"), current, c))
            if not m:
                break
            current = None if current else m["label"]
            pos = m.end()
    if current:
        raise ValueError(f"solution {current!r} has no solution-end fence")
    return out


def _cell(kind: str, text: str, metadata: dict | None = None) -> dict:
    import uuid

    c = {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": metadata or {}, "source": text}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def _nbgrader(grade_id: str, solution: bool, grade: bool, points: int | None = None, locked: bool = False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _plain_exercise(text: str) -> str:
    """The ``{exercise}`` directive as plain Markdown (Jupyter does not render MyST directives)."""
    return EXERCISE_BLOCK_RE.sub(lambda m: f"**Exercise ({m['label']}): {m['title'].strip()}**\n\n{m['body']}\n",
                                 text)


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


def assignment_notebook(nb: dict) -> tuple[dict, dict]:
    """(nbgrader source notebook, {label: points}) for one chapter."""
    out = copy.deepcopy(nb)
    out["cells"] = []
    points: dict[str, int] = {}
    prose: dict[str, list[str]] = {}
    ps = pieces(nb)
    for k, p in enumerate(ps):
        if p.solution is None:
            c = copy.deepcopy(p.cell)
            c["source"] = _plain_exercise(p.text) if p.kind == "markdown" else p.text
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
            comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in "\n\n".join(said).splitlines())
            body = f"### BEGIN SOLUTION\n{comment}{p.text.rstrip()}\n### END SOLUTION\n"
            out["cells"].append(_cell("code", body, _nbgrader(f"{label}-solution-{k}", solution=True, grade=False)))
        last = k + 1 == len(ps) or ps[k + 1].solution != label
        if last:
            rest = prose.pop(label, [])
            if label in MANUAL:
                answer = "\n\n".join(rest)
                out["cells"].append(_cell("markdown", f"### BEGIN SOLUTION\n{answer}\n### END SOLUTION\n",
                                          _nbgrader(f"{label}-answer", solution=True, grade=True,
                                                    points=MANUAL[label])))
                points[label] = MANUAL[label]
            if label in GRADED:
                spec = GRADED[label]
                tests = textwrap.dedent(spec["tests"]).strip("\n")
                out["cells"].append(_cell("code", f"# Auto-graded: {label} ({spec['points']} points)\n{tests}\n",
                                          _nbgrader(f"{label}-test", solution=False, grade=True,
                                                    points=spec["points"], locked=True)))
                points[label] = points.get(label, 0) + spec["points"]
    out["metadata"] = {k: v for k, v in nb["metadata"].items() if k in ("kernelspec", "language_info")}
    return out, points


NBGRADER_CONFIG = '''\
# nbgrader configuration for the ddnm-edu classroom edition (written by `ddnm-edu classroom export`).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "ddnm-edu"
# the chapters run the pretrained models on a CPU: allow a few minutes per cell
c.ExecutePreprocessor.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
'''


def export(out: Path, numbers: list[int] | None = None) -> dict:
    """Write an nbgrader course folder; returns {assignment: {label: points}}."""
    out = Path(out)
    (out / "source").mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    summary = {}
    for path in (chapter_path(n) for n in numbers) if numbers else chapters():
        nb = json.loads(path.read_text())
        src, points = assignment_notebook(nb)
        if not points:
            continue
        name = path.stem
        folder = out / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / path.name).write_text(json.dumps(src, indent=1, ensure_ascii=False) + "\n")
        summary[name] = points
    (out / "assignments.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def student_book(out: Path) -> Path:
    """A copy of the book's sources with every solution removed; build it with jupyter-book."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(BOOK, out / "book", ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, out / name)
    cfg = (out / "_config.yml").read_text()
    def retitle(m: re.Match) -> str:
        import yaml

        return "title: " + json.dumps(f"{yaml.safe_load(m[1])} (student edition)")

    (out / "_config.yml").write_text(re.sub(r"^title:[ \t]*(.*)$", retitle, cfg, count=1, flags=re.M))
    for path in (out / "book").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        path.write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n")
    for path in (out / "book").glob("*.md"):  # Markdown chapters: drop gated solutions the same way
        text = path.read_text()
        kept, pos, current = [], 0, None
        while True:
            m = (END_RE if current else START_RE).search(text, pos)
            if not current:
                kept.append(text[pos:m.start() if m else len(text)])
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
    s = sub.add_parser("student-book", help="the book's sources without solutions (then: jupyter-book build OUT)")
    s.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    if args.what == "export":
        summary = export(args.out, args.chapters)
        for name, pts in summary.items():
            print(f"{name}: " + ", ".join(f"{k} ({v} pt)" for k, v in pts.items()))
        print(f"wrote {args.out}/source/; next: cd {args.out} && nbgrader generate_assignment <chapter>")
    else:
        print(f"wrote {student_book(args.out)}; build it with: jupyter-book build {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command("ddnm-edu classroom", main))
