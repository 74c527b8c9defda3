"""pytest at the repository root: the chapters (nbval) count as slow tests, like the test modules that
build the book, drive a browser or JupyterLab, run nbgrader or build a wheel (``make check`` skips them)."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
