"""Writing the nightly report: `nightly.md` (plots as PNG files beside it), `nightly.html` (plots embedded),
and the markdown appended to `$GITHUB_STEP_SUMMARY` when that is set. Every write is atomic."""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path

from model_checks.core.errors import MissingDependencyError
from model_checks.core.fileio import write_bytes, write_text
from model_checks.nightly.document import FAILING, Report, Section, Table
from model_checks.nightly.plots import trend_png
from model_checks.safety.text import html_text, md_cell, md_text

PLOTS = "nightly-plots"


def _md_table(t: Table, code: tuple[int, ...] = ()) -> list[str]:
    """The table, every cell escaped for markdown; the `code` columns (artifact ids) as code spans."""

    def cell(i: int, c: str) -> str:
        return f"`{md_cell(c)}`" if i in code else md_text(c)

    return [
        "| " + " | ".join(map(md_text, t.head)) + " |",
        "|" + "---|" * len(t.head),
        *("| " + " | ".join(cell(i, c) for i, c in enumerate(r)) + " |" for r in t.rows),
    ]


def markdown(report: Report, images: bool = True) -> str:
    out = [f"# {report.title}", "", *map(md_text, report.lines), ""]
    if report.overview:
        out += ["## Overview", "", *_md_table(report.overview, code=(0,)), ""]
    if report.runtimes:
        out += ["## Runtime matrix", "", *_md_table(report.runtimes, code=(0,)), ""]
    for s in report.sections:
        out += [f"## `{md_cell(s.artifact)}`", "", *(f"- {md_text(line)}" for line in s.lines), ""]
        out += [*_md_table(s.table), ""] if s.table else ["No budget was measured in this run.", ""]
        if images and s.trend:
            out += [f"![{md_text(s.artifact)} over stored runs]({PLOTS}/{s.slug}.png)", ""]
    return "\n".join(out)


def _html_table(t: Table, flag) -> str:  # type: ignore[no-untyped-def]
    parts = ["<table><thead><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in t.head) + "</tr></thead><tbody>"]
    for row in t.rows:
        cls = flag(row)
        parts.append(
            (f'<tr class="{cls}">' if cls else "<tr>") + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>"
        )
    return "\n".join([*parts, "</tbody></table>"])


def _runtime_flag(row: tuple[str, ...]) -> str:
    return "failed" if any(c.startswith(FAILING) for c in row[1:]) else ""


def _budget_flag(row: tuple[str, ...]) -> str:
    return "regression" if row[-1].startswith("regression") else "failed" if row[-2] in FAILING else ""


def _html_section(s: Section, png: bytes | None) -> str:
    parts = [
        f"<h2><code>{html_text(s.artifact)}</code></h2>",
        "<ul>",
        *(f"<li>{html_text(line)}</li>" for line in s.lines),
        "</ul>",
    ]
    if s.table:
        parts.append(_html_table(s.table, _budget_flag))
    else:
        parts.append("<p>No budget was measured in this run.</p>")
    if png:
        parts.append(
            f'<img alt="{html_text(s.artifact)} over stored runs" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    return "\n".join(parts)


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}"
    "tr.regression,tr.failed{background:#fdd}p.verdict{font-size:1.15em;font-weight:bold}img{max-width:100%}"
)
NO_PLOTS = "Plots need matplotlib: pip install 'model-checks[report]'."


def _pngs(report: Report) -> tuple[dict[str, bytes], list[str]]:
    """The plots by section slug, and a line saying why there are none where matplotlib is missing."""
    wanted = [s for s in report.sections if s.trend]
    if not wanted:
        return {}, []
    pngs, notes = {}, []
    for s in wanted:
        try:
            pngs[s.slug] = trend_png(s)
        except MissingDependencyError:
            return {}, [NO_PLOTS]
        except Exception as e:  # one artifact's plot that cannot be drawn costs that plot, not the report
            notes.append(f"The plot of {s.artifact} could not be drawn ({type(e).__name__}: {str(e)[:200]}).")
    return pngs, notes


def write(report: Report, directory: Path, step_summary: str | None = None) -> list[Path]:
    """Write the report under `directory`; return the files written."""
    pngs, notes = _pngs(report)
    if notes:
        report = dataclasses.replace(report, lines=(*report.lines, *notes))
    written = []
    for slug, png in pngs.items():
        written.append(write_bytes(directory / PLOTS / f"{slug}.png", png))
    md = markdown(report, images=bool(pngs))
    write_text(directory / "nightly.md", md)
    head, *rest = report.lines
    body = "\n".join(
        [
            f"<h1>{html.escape(report.title)}</h1>",
            f'<p class="verdict">{html_text(head)}</p>',
            *(f"<p>{html_text(line)}</p>" for line in rest),
            *(
                ["<h2>Overview</h2>", _html_table(report.overview, lambda r: "failed" if r[-1] in FAILING else "")]
                if report.overview
                else []
            ),
            *(["<h2>Runtime matrix</h2>", _html_table(report.runtimes, _runtime_flag)] if report.runtimes else []),
            *(_html_section(s, pngs.get(s.slug)) for s in report.sections),
        ]
    )
    write_text(
        directory / "nightly.html",
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
    )
    written += [directory / "nightly.md", directory / "nightly.html"]
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:  # GitHub appends to this file step by step
            f.write(markdown(report, images=False) + "\n")
    return written
