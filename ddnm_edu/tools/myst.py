"""The book's MyST as plain Jupyter Markdown, for notebooks that leave the book (the classroom edition):
directives become bold-titled paragraphs or quotes, {eq}/{cite}/{math}/{ref} roles become text, and a
labelled equation's label becomes its \\tag.
"""

from __future__ import annotations

import re

# a directive, also one indented inside a list item (its fences and options carry the same indent)
DIRECTIVE_RE = re.compile(
    r"^(?P<indent>[ \t]*)```\{(?P<name>[a-z-]+)\}[ \t]*(?P<title>[^\n]*)\n"
    r"(?P<opts>(?:(?P=indent):[^\n]*\n)*)(?P<body>.*?)\n(?P=indent)```[ \t]*(?:\n|$)",
    re.S | re.M,
)
ROLE_RE = re.compile(r"\{(?P<role>[a-z]+)\}`(?P<arg>[^`]*)`")
LABELLED_MATH_RE = re.compile(r"\n\$\$[ \t]*\((?P<label>[\w:-]+)\)[ \t]*(?=\n|$)")


def _role(m: re.Match) -> str:
    role, arg = m["role"], m["arg"]
    if role == "eq":
        return f"({arg})"
    if role == "cite":
        return "[" + ", ".join(a.strip() for a in arg.split(",")) + "]"
    if role == "math":
        return f"${arg}$"
    shown = re.match(r"(?s)(.*?)\s*<[^>]*>$", arg)  # {ref}`text <target>` -> text
    return shown[1] if shown else arg


def plain_markdown(text: str) -> str:
    """MyST as plain Jupyter Markdown: exercise and other directives as bold-titled paragraphs or quotes,
    {eq}/{cite}/{math}/{ref} roles as text, and a labelled equation's label as its \\tag."""

    def directive(m: re.Match) -> str:
        indent = m["indent"]
        title = m["title"].strip() or m["name"].capitalize()
        label = re.search(r"^[ \t]*:label:[ \t]*(\S+)", m["opts"], re.M)
        body = "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in m["body"].splitlines())
        if m["name"] == "exercise":  # a bold title, the body as it is
            out = f"**Exercise ({label[1] if label else ''}): {title}**\n\n{body}"
        else:
            out = "\n".join([f"> **{title}**", ">"] + [f"> {line}".rstrip() for line in body.splitlines()])
        return "\n".join(indent + line if line else line for line in out.splitlines()) + "\n"

    text = DIRECTIVE_RE.sub(directive, text)
    text = LABELLED_MATH_RE.sub(lambda m: f"\n\\tag{{{m['label']}}}\n$$", text)
    return ROLE_RE.sub(_role, text)
