"""nbgrader feedback for students (``ddnm-edu classroom export`` configures it): the hidden tests of every
graded cell are removed, and every error is shown as one line, ``AssertionError: <message>``, not as a
traceback into the library. Imported by nbgrader only (it needs nbconvert, from the ``classroom`` extra)."""
from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

HIDDEN = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[^\n]*\n?", re.S)


class StudentFeedback(Preprocessor):
    """Hidden tests out of the graded cells; each error output reduced to its type and message."""

    enabled = Bool(True, help="on whenever nbgrader's config lists it").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = HIDDEN.sub("# (hidden tests)\n", cell.source)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
