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


def md_cell(text: str) -> str:
    """Text as one table cell: escaped (printable), with no `|` to split the row and no backtick to end a span."""
    return printable(text).replace("|", "\\|").replace("`", "\\u0060")
