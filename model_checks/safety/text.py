"""Text from an artifact (ids, versions, directory names) made safe to print: in the log, a markdown table,
junit. Nothing a pull request names can start a line, colour a terminal or split a table row."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character that is not printable (control characters, line breaks, escape sequences,
    bidirectional overrides, zero-width marks) written as its Python escape: a directory name or an id is
    shown as it is, but can never start a line, colour a terminal or reorder what a reader sees."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def terminal_lines(text: str) -> str:
    """A gate message of several lines for the terminal (and junit): each line printable, and a line break only where
    the gate's own layout puts one. Every line after a message's first is indented (a problem, a note, an error's
    text), so a line break followed by anything else came inside quoted text (a model's output named
    "y\\n<path>::test_x PASSED") and is shown as its escape, joined to the line it is part of: an artifact cannot
    start a line of the report at its left margin, where pytest writes its own."""
    lines: list[str] = []
    for line in text.split("\n"):
        if lines and line and not line[0].isspace():
            lines[-1] += "\\n" + printable(line)
        else:
            lines.append(printable(line))
    return "\n".join(lines)


def md_cell(text: str) -> str:
    """Text as one table cell: escaped (printable), with no `|` to split the row and no backtick to end a span."""
    return printable(text).replace("|", "\\|").replace("`", "\\u0060")


# One function per medium; every text from an artifact, a manifest, a stored run or a record goes through the one
# for where it is written. `printable` is the terminal's (and junit's), `md_cell` a markdown table cell's.
terminal = printable

_MD_SPECIAL = {c: "\\" + c for c in "\\`*_[]|#!~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_text(text: str) -> str:
    """Text as markdown outside a code span (a list item, a cell not in backticks): printable, and every character
    that could start emphasis, a link (`[x](javascript:...)`), an autolink or raw HTML (`<script>`), a heading or a
    table cell escaped, so it reads as the characters it holds."""
    return "".join(_MD_SPECIAL.get(c, c) for c in printable(text))


def html_text(text: str) -> str:
    """Text as HTML element content or a quoted attribute value: printable, then &, <, >, " and ' escaped."""
    import html

    return html.escape(printable(text), quote=True)


def mpl_text(text: str) -> str:
    """Text for a matplotlib title, label or legend: printable, and `$` escaped so that no mathtext is parsed
    (a `$\\mathdefault{...}$` from a stored run could otherwise fail the drawing or draw what it likes)."""
    return printable(text).replace("$", r"\$")
