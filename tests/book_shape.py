"""The shape of a core chapter's reading path (issue 40): how much a student reads and sees.

The reading path is what the HTML shows unfolded, before the chapter's ``## Notes`` section:

- prose words: Markdown without math (``$…$``, ``$$…$$``, ``{math}`` blocks), code fences, directive
  options, roles' targets and HTML comments;
- visible code lines: code cells not tagged ``remove-cell``, ``remove-input``, ``hide-input`` or
  ``hide-cell``, without blank and comment-only lines;
- ``assert`` lines: the visible lines that belong to an ``assert`` statement.

Exercise statements are on the path; their solutions (between ``solution-start`` and ``solution-end``,
folded in a dropdown) are not. The template's boxes (issue 40, item 1) are found by their titles.

Run ``python tests/book_shape.py`` for the table of every chapter.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
NOTES = re.compile(r"^## Notes\s*$", re.M)
GOALS = {"words": 2000, "code": 150, "assert_share": 0.05}
# the template's parts (issue 40, item 1), each found by the title it carries in the source
TEMPLATE = {
    "prerequisites": re.compile(r"\*\*Prerequisites\*\*"),
    "you will learn": re.compile(r"\*\*You will learn\*\*"),
    "time": re.compile(r"\*\*Time\*\*"),
    "key takeaways": re.compile(r"^## Key takeaways\s*$", re.M),
    "check your understanding": re.compile(r"^## Check your understanding\s*$", re.M),
}
# every exercise's title ends with its difficulty: ★ (minutes), ★★ (a derivation or a few steps of code),
# ★★★ (extends the chapter)
EXERCISE = re.compile(r"^```\{exercise\} (.*)$", re.M)
DIFFICULTY = re.compile(r" (★{1,3})$")
# the opener's time: "**Time**: about N minutes ..."
TIME = re.compile(r"\*\*Time\*\*: about (\d+) minutes")


def core_chapters() -> list[Path]:
    """Chapters 1-13 and any chapter a split made: the numbered notebooks before the summary."""
    out = []
    for p in sorted(BOOK.glob("[0-9][0-9]-*.ipynb")):
        n = int(p.name[:2])
        if 1 <= n <= 13:
            out.append(p)
    return out


MATH = [
    re.compile(r"\$\$.*?\$\$(\s*\([^)]*\))?", re.S),
    re.compile(r"\$[^$\n]+\$"),
    re.compile(r"^```\{math\}.*?^```", re.S | re.M),
]
FENCED_CODE = re.compile(r"^(`{3,})(?!\{)[^\n]*\n.*?^\1\s*$", re.S | re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
# a folded block (an answer to "Check your understanding") is not on the reading path; its title is
FOLDED = re.compile(r"^(\s*)```\{admonition\}([^\n]*)\n\s*:class: dropdown\n.*?^\1```\s*$", re.S | re.M)
OPTION = re.compile(r"^:[\w-]+:.*$", re.M)
FENCE_LINE = re.compile(r"^`{3,}(?:\{[\w-]+\})?(.*)$", re.M)  # a directive's title is read
ROLE = re.compile(r"\{(\w+)\}`([^`]*)`")
WORD = re.compile(r"[^\W\d_][\w'’-]*")


def prose_words(md: str) -> int:
    """Words of prose a reader reads in a Markdown block."""
    md = FOLDED.sub(lambda m: " " + m.group(2), md)
    for rx in [COMMENT, FENCED_CODE, *MATH]:
        md = rx.sub(" ", md)
    md = OPTION.sub(" ", md)
    md = FENCE_LINE.sub(lambda m: " " + m.group(1), md)
    # a role reads as its text: {numref}`Fig <x>` reads "Fig", {cite}`key` as a number, {eq}`x` as a number
    md = ROLE.sub(lambda m: re.sub(r"<[^>]*>", "", m.group(2)) if m.group(1) in ("ref", "numref", "doc") else " ", md)
    md = re.sub(r"`[^`]*`", " x ", md)  # inline code reads as one word
    return len(WORD.findall(md))


def code_counts(src: str) -> tuple[int, int]:
    """(visible code lines, lines of assert statements), blanks and comments left out."""
    lines = src.splitlines()
    real = {i + 1 for i, s in enumerate(lines) if s.strip() and not s.strip().startswith(("#", "%", "!"))}
    try:
        tree = ast.parse("\n".join(s if not s.lstrip().startswith(("%", "!")) else "" for s in lines))
    except SyntaxError:
        return len(real), 0
    asserted = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            asserted |= set(range(node.lineno, node.end_lineno + 1))
    return len(real), len(real & asserted)


@dataclass
class Shape:
    chapter: str
    words: int = 0
    code: int = 0
    asserts: int = 0
    template: dict = field(default_factory=dict)

    untagged: list = field(default_factory=list)
    stated_minutes: int | None = None

    @property
    def minutes(self) -> int:
        """Reading time, rounded up to 5 minutes: 120 prose words and 8 code lines a minute."""
        return int(5 * -(-(self.words / 120 + self.code / 8) // 5))

    @property
    def assert_share(self) -> float:
        return self.asserts / self.code if self.code else 0.0

    def shortfalls(self) -> list[str]:
        out = []
        if self.words > GOALS["words"]:
            out.append(f"{self.words} prose words on the reading path (at most {GOALS['words']})")
        if self.code > GOALS["code"]:
            out.append(f"{self.code} visible code lines (at most {GOALS['code']})")
        if self.assert_share > GOALS["assert_share"]:
            out.append(f"{self.assert_share:.0%} of the visible code is assert (at most 5 %)")
        out += [f"no {part}" for part, ok in self.template.items() if not ok]
        out += [f"exercise without a difficulty: {title}" for title in self.untagged]
        if self.stated_minutes is not None and abs(self.stated_minutes - self.minutes) > 5:
            out.append(f"the opener says {self.stated_minutes} minutes; the reading path takes about {self.minutes}")
        return out


def shape(path: Path) -> Shape:
    cells = json.loads(path.read_text())["cells"]
    s = Shape(path.stem)
    whole = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    s.template = {part: bool(rx.search(whole)) for part, rx in TEMPLATE.items()}
    s.untagged = [m.group(1) for m in EXERCISE.finditer(whole) if not DIFFICULTY.search(m.group(1))]
    m = TIME.search(whole)
    s.stated_minutes = int(m.group(1)) if m else None
    in_solution = False
    for c in cells:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            m = NOTES.search(src)
            text = src[: m.start()] if m else src
            words = 0
            for part in re.split(r"(^`{4}\{solution-(?:start|end)\}.*?\n`{4}\s*$)", text, flags=re.S | re.M):
                if part.startswith("````{solution-start}"):
                    in_solution = True
                elif part.startswith("````{solution-end}"):
                    in_solution = False
                elif not in_solution:
                    words += prose_words(part)
            s.words += words
            if m:
                break
        elif not in_solution and not HIDDEN & set(c.get("metadata", {}).get("tags", [])):
            code, asserts = code_counts(src)
            s.code += code
            s.asserts += asserts
    return s


def table() -> str:
    rows = ["| chapter | words | visible code | assert | shortfalls |", "|---|---|---|---|---|"]
    for p in core_chapters():
        s = shape(p)
        rows.append(
            f"| {s.chapter} | {s.words} | {s.code} | {s.assert_share:.0%} | {len(s.shortfalls())}: "
            + "; ".join(s.shortfalls())
            + " |"
        )
    total = sum(len(shape(p).shortfalls()) for p in core_chapters())
    return "\n".join(rows) + f"\n\n{total} shortfalls in all"


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
