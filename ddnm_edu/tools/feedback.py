"""nbgrader feedback for students (``ddnm-edu classroom export`` configures it): every error is shown as
one line, ``AssertionError: <message>``, not as a traceback into the library. The hidden tests are removed
by nbgrader's own ``ClearHiddenTests``, listed before this one in the exported ``nbgrader_config.py``.
Imported by nbgrader only (it needs nbconvert, from the ``classroom`` extra)."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class StudentFeedback(Preprocessor):
    """Each error output reduced to its type and message."""

    enabled = Bool(True, help="on whenever nbgrader's config lists it").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
