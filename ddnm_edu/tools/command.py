"""What every command of the project shares: bad input is one line on stderr and exit code 2.

``ddnm-edu`` and each ``python -m ddnm_edu.tools.<name>`` parse their arguments with
:class:`CommandParser` and run through :func:`run_command`.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DDNMInputError


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line, like every other error of a command:
    ``PROG: error: MESSAGE; see PROG --help.`` and exit code 2 (subcommands inherit it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep docstrings' layout
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help.\n")


def run_command(prog: str, main, *args) -> int:
    """Run a command's ``main(*args)`` and return its exit code: bad input (a :class:`DDNMInputError`)
    becomes one line on stderr, ``PROG: error: MESSAGE``, and exit code 2 instead of a traceback.

    Every entry point goes through it: ``ddnm-edu`` and ``python -m ddnm_edu.<tool>``.
    """
    try:
        return main(*args) or 0
    except DDNMInputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
