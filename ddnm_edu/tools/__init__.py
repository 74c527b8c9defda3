"""Tooling around the book's library, not needed to follow the book: ``python -m ddnm_edu.tools.<name>``.

* ``cli`` (the ``ddnm-edu`` command: ``restore``, ``classroom``) and ``images`` (image files in and out)
* ``train`` (the UNets and the specialists) and ``weights`` (export and interpolate recorded weights)
* ``evaluate`` (model cards, the paper's comparison in miniature, the specialists against DDNM)
* ``datasets`` and ``emoji`` (rebuild ``data/`` from Debian, PyPI and npm)
* ``classroom`` (nbgrader assignments and the student edition) and ``myst`` (the book's MyST as plain Markdown)
* ``command`` (what every command shares: one-line errors, exit code 2)
* ``attention_cost`` (chapter 13's measurement of MDTA against spatial attention)
"""
