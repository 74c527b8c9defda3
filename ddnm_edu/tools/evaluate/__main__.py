"""``python -m ddnm_edu.tools.evaluate``: see the package docstring."""

from ..command import run_command
from . import main

raise SystemExit(run_command("python -m ddnm_edu.tools.evaluate", main))
