"""Writing the nightly report: `nightly.md` (plots as PNG files beside it), `nightly.html` (plots embedded),
and the markdown appended to `$GITHUB_STEP_SUMMARY` when that is set. Every write is atomic."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from model_checks.nightly.document import Report, Section, Table
from model_checks.nightly.plots import trend_png
from model_checks.core.fileio import write_bytes, write_text
from model_checks.safety.text import md_cell

PLOTS = "nightly-plots"


def _md_table(t: Table) -> list[str]:
    return ["| " + " | ".join(t.head) + " |", "|" + "---|" * len(t.head), *("| " + " | ".join(r) + " |" for r in t.rows)]


def markdown(report: Report, images: bool = True) -> str:
    out = [f"# {report.title}", "", *report.lines, ""]
    for s in report.sections:
        out += [f"## `{md_cell(s.artifact)}`", "", *(f"- {line}" for line in s.lines), ""]
        out += [*_md_table(s.table), ""] if s.table else ["No budget was measured in this run.", ""]
        if images and s.trend:
            out += [f"![{md_cell(s.artifact)} over stored runs]({PLOTS}/{s.slug}.png)", ""]
    return "\n".join(out)


def _html_section(s: Section, png: bytes | None) -> str:
    parts = [f"<h2><code>{html.escape(md_cell(s.artifact))}</code></h2>", "<ul>", *(f"<li>{html.escape(line)}</li>" for line in s.lines), "</ul>"]
    if s.table:
        parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in s.table.head) + "</tr></thead><tbody>")
        for row in s.table.rows:
            cls = ' class="regression"' if row[-1].startswith("regression") else ""
            parts.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No budget was measured in this run.</p>")
    if png:
        parts.append(f'<img alt="{html.escape(s.artifact)} over stored runs" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    return "\n".join(parts)


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:.85em}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}tr.regression{background:#fdd}img{max-width:100%}")


def write(report: Report, directory: Path, step_summary: str | None = None) -> list[Path]:
    """Write the report under `directory`; return the files written."""
    pngs = {s.slug: trend_png(s.artifact, s.trend) for s in report.sections if s.trend}
    written = []
    for slug, png in pngs.items():
        written.append(write_bytes(directory / PLOTS / f"{slug}.png", png))
    md = markdown(report)
    write_text(directory / "nightly.md", md)
    body = "\n".join([f"<h1>{html.escape(report.title)}</h1>", *(f"<p>{html.escape(line)}</p>" for line in report.lines),
                      *(_html_section(s, pngs.get(s.slug)) for s in report.sections)])
    write_text(directory / "nightly.html", f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
                                             f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
    written += [directory / "nightly.md", directory / "nightly.html"]
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:  # GitHub appends to this file step by step
            f.write(markdown(report, images=False) + "\n")
    return written
