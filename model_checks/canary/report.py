"""The canary's table, verdict line, junit and JSON (the nightly report reads the JSON back)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from model_checks.canary.compare import ArtifactResult
from model_checks.safety.text import md_cell, printable

JSON_NAME, TABLE_NAME, JUNIT_NAME = "canary.json", "canary.md", "canary.xml"


@dataclass(frozen=True)
class CanaryReport:
    package: str
    pinned: str
    candidate: str
    results: tuple[ArtifactResult, ...]

    @property
    def safe(self) -> bool:
        return all(r.safe for r in self.results)

    def verdict_line(self) -> str:
        n, ok = len(self.results), sum(r.safe for r in self.results)
        head = f"{self.package} {self.pinned} -> {self.candidate}: "
        if not n:
            return head + "no artifact runs on it"
        if ok == n:
            return head + f"safe to bump: {ok} of {n}"
        bad = "; ".join(
            f"{printable(r.id)} {'drifts' if r.drift else 'changes'}: {printable(r.why())}"
            for r in self.results
            if not r.safe
        )
        return head + f"safe to bump: {ok} of {n}; {bad}"

    def table(self) -> str:
        def num(v: float | None, fmt: str = ".3g") -> str:
            return "-" if v is None else format(v, fmt)

        say = {True: "pass", False: "FAIL", None: "-"}
        lines = [
            f"## Runtime canary: {self.package} {self.pinned} (pinned) against {self.candidate}",
            "",
            "| artifact | cases | outputs | max rel_l2 | max abs | top-1 flips | p50 pinned ms | p50 candidate ms "
            "| equivalence | bump |",
            "|---|---:|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in self.results:
            same = "error" if r.error else "bit-identical" if r.identical else "differ"
            flips = f"{r.top1_flips} of {r.rows}" if r.rows else "-"
            lines.append(
                f"| {md_cell(r.id)} | {r.cases} | {same} | {num(r.rel_l2)} | {num(r.max_abs)} | {flips} | "
                f"{num(r.p50_pinned_ms, '.4f')} | {num(r.p50_candidate_ms, '.4f')} | "
                f"{say[r.verdict_pinned]} -> {say[r.verdict_candidate]} | "
                f"{'safe' if r.safe else md_cell('NOT SAFE: ' + r.why())} |"
            )
        return "\n".join([*lines, "", self.verdict_line(), ""])

    def junit(self) -> bytes:
        suite = ET.Element(
            "testsuite",
            name=f"canary {self.package}=={self.candidate}",
            tests=str(len(self.results)),
            failures=str(sum(not r.safe for r in self.results)),
        )
        for r in self.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname="model_checks.canary",
                name=f"canary[{printable(r.id)}-{self.package}=={self.candidate}]",
            )
            props = ET.SubElement(case, "properties")
            for k, v in asdict(r).items():
                if v is not None:
                    ET.SubElement(props, "property", name=f"model_checks.canary.{k}", value=printable(str(v)))
            if not r.safe:
                ET.SubElement(case, "failure", message=printable(r.why())).text = printable(r.why())
        return ET.tostring(ET.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)

    def to_json(self) -> dict:
        return {
            "package": self.package,
            "pinned": self.pinned,
            "candidate": self.candidate,
            "safe": self.safe,
            "verdict": self.verdict_line(),
            "results": [{**asdict(r), "safe": r.safe} for r in self.results],
        }

    def write(self, out: Path) -> list[Path]:
        from model_checks.core.fileio import write_bytes, write_text

        return [
            write_text(out / TABLE_NAME, self.table()),
            write_bytes(out / JUNIT_NAME, self.junit()),
            write_text(out / JSON_NAME, json.dumps(self.to_json(), indent=1, default=str)),
        ]


def last(out: Path) -> dict | None:
    """The last canary written under `out`, or None (for the nightly report). The file may come from a pull request
    (a committed or cached reports folder): a regular file under 1 MiB whose verdict is text, else None."""
    from model_checks.core.errors import ModelChecksError
    from model_checks.safety.files import read_regular_text

    path = out / JSON_NAME
    if not path.exists() and not path.is_symlink():
        return None
    try:
        record = json.loads(read_regular_text(path, 1 << 20, "canary record"))
    except (ModelChecksError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("verdict"), str):
        return None
    return record
