"""The library stays readable: no function over 80 lines, no module over 450 (issue 38's outside check)."""

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "ddnm_edu"


def test_no_long_functions_or_modules():
    too_long = []
    for path in sorted(LIB.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(LIB.parent)
        if len(text.splitlines()) > 450:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, "split these: " + "; ".join(too_long)
