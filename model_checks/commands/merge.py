"""Merge the reports of a sharded run (--model-checks-shard K/N) into one junit.xml, summary.md and nightly report

Each DIR is one shard's output folder, holding the junit.xml of `--junitxml DIR/junit.xml` and the summary.md and
summary.json of `--model-checks-summary DIR/summary.md` (and nightly.md when the shards ran with
`--model-checks-nightly-report DIR`). Fails, writing nothing, when a shard is missing or an artifact was gated
by two shards; exits 1 when a merged check failed, as the single run would have.

example:
  model-checks merge shards/1 shards/2 shards/3 -o reports
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from model_checks.core.errors import ModelChecksError
from model_checks.safety.text import printable

EXTRAS = "merge"  # the extras it needs beyond the base install, named in --help


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="one shard's output folder (junit.xml, summary.md, summary.json)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="OUT",
        help="where to write junit.xml, summary.md, summary.json (and nightly.md/.html when the shards wrote one)",
    )
    p.add_argument(
        "--benchmark-storage",
        default=None,
        metavar="DIR",
        help="pytest-benchmark's storage, for the nightly report's trends. Default: pytest-benchmark's (.benchmarks)",
    )


@dataclass(frozen=True)
class Shard:
    directory: Path
    record: dict

    @property
    def label(self) -> str:
        s = self.record.get("shard")
        return f"{s[0]}/{s[1]}" if s else "unsharded"


@dataclass(frozen=True)
class Lost:
    """A shard that never reported (its node died twice): its artifacts are reported as lost, never as passed."""

    shard: tuple[int, int]
    ids: tuple[str, ...]
    reason: str


def read_shards(dirs: list[Path], lost: tuple[Lost, ...] = ()) -> list[Shard]:
    """Each DIR's run record, checked: every shard 1..N of one N present once (or lost), no artifact gated twice."""
    from model_checks.commands.shard_files import read_record
    from model_checks.plugin.summary import RECORD_SCHEMA

    shards = []
    for d in dirs:
        p = d / "summary.json"
        for need in (d / "junit.xml", p):
            if not os.path.lexists(need):
                raise ModelChecksError(
                    f"{need}: missing; run each shard with --junitxml {d}/junit.xml "
                    f"--model-checks-summary {d}/summary.md --model-checks-shard K/N"
                )
        shards.append(Shard(d, read_record(p, RECORD_SCHEMA)))
    counts = {tuple(s.record["shard"])[1] if s.record.get("shard") else None for s in shards} | {
        x.shard[1] for x in lost
    }
    if len(counts) != 1 or None in counts:
        got = ", ".join(f"{s.directory}: {s.label}" for s in shards)
        raise ModelChecksError(
            f"the folders are not shards of one run ({got}); every shard must be run with "
            "--model-checks-shard K/N with the same N"
        )
    (n,) = counts
    seen: dict[int, Path] = {x.shard[0]: Path(f"(lost: {x.reason})") for x in lost}
    for s in shards:
        k = s.record["shard"][0]
        if k in seen:
            raise ModelChecksError(f"shard {k}/{n} given twice: {seen[k]} and {s.directory}")
        seen[k] = s.directory
    if n - len(seen) > 0:
        missing = [f"{k}/{n}" for k in range(1, min(n, len(seen) + 10) + 1) if k not in seen][:5]
        more = f" and {n - len(seen) - len(missing)} more" if n - len(seen) > len(missing) else ""
        raise ModelChecksError(
            f"shard(s) {', '.join(missing)}{more} missing: only {len(seen)} of {n} given "
            f"({', '.join(f'{s.label} in {s.directory}' for s in sorted(shards, key=lambda s: s.record['shard'][0]))}); "
            "a lost CI job must be rerun, or its artifacts are reported as checked when they were not"
        )
    owner: dict[str, Shard] = {}
    twice = []
    for s in shards:
        for aid in s.record.get("artifacts", []):
            if aid in owner:
                twice.append(
                    f"{aid} (shard {owner[aid].label} in {owner[aid].directory} and {s.label} in {s.directory})"
                )
            owner.setdefault(aid, s)
    if twice:
        raise ModelChecksError(
            f"{len(twice)} artifact(s) gated twice: {'; '.join(twice[:5])}{' ...' if len(twice) > 5 else ''}; "
            "the shards come from different trees or different --model-checks-shard-weights: "
            "run every shard on the same checkout with the same options"
        )
    return sorted(shards, key=lambda s: s.record["shard"][0])


def merged_junit(files: list[Path], lost: tuple[Lost, ...] = (), texts: list[bytes] | None = None) -> bytes:
    """One testsuite holding every shard's testcases, counts and time recomputed (junitparser); an error testcase
    `lost[<id>]` for each artifact of a lost shard. `texts`: the files' contents, already read and checked."""
    from model_checks.commands.shard_files import read_junit
    from model_checks.core.requires import require

    jp = require("junitparser", "merge", "model-checks merge")
    suite = jp.TestSuite("pytest")
    for n, f in enumerate(files):
        xml = jp.JUnitXml.fromstring(texts[n] if texts is not None else read_junit(f))
        for s in xml if isinstance(xml, jp.JUnitXml) else [xml]:
            for case in s:
                suite.append(case)  # add_testcase recounts the whole suite on every call: quadratic in testcases
    for x in lost:
        for aid in x.ids:
            case = jp.TestCase(f"lost[{aid}]", "model_checks.lost")
            case.result = [jp.Error(lost_message(x), "lost")]
            suite.append(case)
    suite.update_statistics()  # once, over every testcase
    out = jp.JUnitXml()
    out.add_testsuite(suite)
    out.update_statistics()
    return out.tostring()


def lost_message(x: Lost) -> str:
    return (
        f"lost: shard {x.shard[0]}/{x.shard[1]} never reported ({x.reason}); it was retried once. Its artifacts were not "
        "checked: rerun them with pytest --model-checks ROOT --model-checks-shard "
        f"{x.shard[0]}/{x.shard[1]} before trusting this report"
    )


def merge(
    dirs: list[Path], out: Path, storage: str | None = None, lost: tuple[Lost, ...] = ()
) -> tuple[int, list[Path]]:
    """Merge the shards in `dirs` (and the `lost` ones) into `out`; (artifacts failing or lost, files written)."""
    from model_checks.commands.shard_files import disagreements, junit_outcomes, read_junit, record_outcomes
    from model_checks.core.fileio import write_bytes, write_text
    from model_checks.nightly.document import gather
    from model_checks.plugin.summary import Summary, record_path, reports_of
    from model_checks.plugin.verdict import read_record

    shards = read_shards(dirs, lost)
    texts = [read_junit(s.directory / "junit.xml") for s in shards]
    verdicts: dict[str, str] = {}
    for s, text in zip(shards, texts, strict=True):  # the junit XML and the record must tell the same story
        said = junit_outcomes(text)
        differ = disagreements(said, record_outcomes(s.record))
        if differ:
            raise ModelChecksError(
                f"shard {s.label} in {s.directory}: its junit.xml and summary.json disagree on {len(differ)} "
                f"test(s): {'; '.join(printable(d) for d in differ[:5])}{' ...' if len(differ) > 5 else ''}. "
                "One of them was edited or comes from another run: rerun the shard"
            )
        verdicts.update(said)
    junit = merged_junit([s.directory / "junit.xml" for s in shards], lost, texts)
    summary = Summary(out / "summary.md", lost={aid: lost_message(x) for x in lost for aid in x.ids})
    nightly: dict | None = {} if any((s.directory / "nightly.md").is_file() for s in shards) else None
    for s in shards:
        summary.replay(s.record, s.label)
        if nightly is not None:
            for r in reports_of(s.record):
                gather(nightly, read_record(r["properties"]), r["when"], r["outcome"])
    record = summary.record()
    record["shard"] = None
    record["merged"] = [s.label for s in shards]
    record["lost"] = {f"{x.shard[0]}/{x.shard[1]}": list(x.ids) for x in lost}
    written = [
        write_bytes(out / "junit.xml", junit),
        write_text(out / "summary.md", summary.render()),
        write_text(record_path(out / "summary.md"), json.dumps(record, indent=1, sort_keys=True) + "\n"),
    ]
    if nightly is not None:
        from model_checks.nightly.write import write_nightly

        written += write_nightly(nightly, out, storage, machines=summary.machines)
    failed = summary.failed
    # a failure the junit XML holds for a test the records do not name (a fixture error before any fact was attached)
    failed += sum(1 for name, v in verdicts.items() if v == "failed" and not _in_rows(name, summary.rows))
    return failed, written


def _in_rows(test: str, rows: dict) -> bool:
    aid = test.partition("[")[2].rstrip("]")
    return any(aid == a or aid.startswith(a + "-") for a in rows)


def run(args: argparse.Namespace) -> int:
    from model_checks.plugin.summary import machine_warning

    warning = machine_warning({s.label: s.record for s in read_shards(args.dirs)})
    if warning:
        print(f"model-checks merge: warning: {printable(warning)}", file=sys.stderr)
    failed, written = merge(args.dirs, args.out, args.benchmark_storage)
    for p in written:
        print(f"model-checks merge: wrote {p}")
    if failed:
        print(f"model-checks merge: {failed} artifact(s) with a failing check or lost", file=sys.stderr)
    return 1 if failed else 0
