"""Sphinx extension: the built book needs no CDN, so it reads offline (a classroom on bad Wi-Fi).

* MathJax 3.2.2 is served from the build (``_static/mathjax/``), copied from the PyPI package
  ``django-static-mathjax==3.2.2.1`` (the official MathJax ``es5`` build, Apache License 2.0;
  packaged by B. Moody, MIT LCP). Only what ``tex-chtml.js`` can load is copied (~8 MB).
* ipywidgets snapshots would need require.js and the widget embed manager from CDNs and, without a
  kernel, cannot run the viewer anyway; ``nb_ipywidgets_js`` is emptied and the chapters show the
  static per-step viewer (``ddnm_edu.viz.trace_html``) in the built book instead.
* Two theme quirks that put errors in every page's console are mended: the Jupyter Book stack
  registers some inline scripts twice (``const THEBE_JS_URL`` declared twice is a SyntaxError), so
  duplicates are dropped; and pydata-sphinx-theme reads an empty colour mode on a first visit
  ("Got invalid theme mode: . Resetting to auto."), so an empty mode is set to ``auto`` first.
"""
from __future__ import annotations

import shutil
from pathlib import Path

MATHJAX_FILES = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre")


def mathjax_source() -> Path:
    try:
        import mathjax  # django-static-mathjax
    except ImportError as e:  # the book extra installs it
        raise RuntimeError("the offline book needs MathJax from PyPI: pip install 'django-static-mathjax==3.2.2.1' "
                           "(it is in the 'book' extra: pip install -e '.[book]').") from e
    return Path(mathjax.__file__).parent / "static" / "mathjax"


def _config_inited(app, config) -> None:
    config.mathjax_path = "mathjax/tex-chtml.js"  # relative to _static
    config.nb_ipywidgets_js = {}


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src, dst = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for rel in MATHJAX_FILES:
        s, d = src / "es5" / rel, dst / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d)
    shutil.copy2(src / "LICENSE", dst / "LICENSE")
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        fixed = _dedupe_head_scripts(text)
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def _dedupe_head_scripts(html: str) -> str:
    """Drop repeated identical one-line <script> elements from a page's <head>."""
    head, sep, body = html.partition("</head>")
    seen, kept = set(), []
    for line in head.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("<script") and s.endswith("</script>"):
            if s in seen:
                continue
            seen.add(s)
        kept.append(line)
    return "".join(kept) + sep + body


EMPTY_MODE_TO_AUTO = "if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = 'auto'; }"


def setup(app):
    mathjax_source()  # fail early, with the fix, when the package is missing
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("build-finished", _copy)
    app.add_js_file(None, body=EMPTY_MODE_TO_AUTO, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
