"""`model-checks merge` and `--model-checks-shard` on hostile input (issue 19): every shard file is a regular
file under a cap, no DTD is parsed, every record field is checked with the file and key named, the junit XML and
the record must agree, and a shard count is bounded by the tree. Never a traceback."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fixtures import artifacts as A
from model_checks.cli import main

NODE = "arts/a/metadata.yaml::test_integrity[a@1.0]"


def _record(outcome: str = "passed", **changes: object) -> dict:
    props = [
        ["model_checks.artifact", "a@1.0"],
        ["model_checks.dir", "arts/a"],
        ["model_checks.check", "integrity"],
        ["model_checks.ok", outcome == "passed"],
        ["model_checks.format", "onnx"],
        ["model_checks.size_mb", 0.001],
    ]
    rec = {
        "schema": 1,
        "shard": [1, 1],
        "interrupted": False,
        "artifacts": ["a@1.0"],
        "expected": {"a@1.0": ["integrity"]},
        "reports": [{"nodeid": NODE, "when": "call", "outcome": outcome, "properties": props}],
    }
    rec.update(changes)
    return rec


def _junit(outcome: str = "passed", attrs: str = "", doctype: str = "") -> str:
    inner = '<failure message="integrity: a@1.0: broken">x</failure>' if outcome == "failed" else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{doctype}<testsuites><testsuite name="pytest" tests="1">'
        f'<testcase classname="arts.a.metadata.yaml" name="test_integrity[a@1.0]" time="0.01"{attrs}>{inner}'
        "</testcase></testsuite></testsuites>"
    )


def shard(tmp_path: Path, record: dict | None = None, junit: str | None = None) -> Path:
    d = tmp_path / "shard1"
    d.mkdir(exist_ok=True)
    (d / "summary.json").write_text(json.dumps(record if record is not None else _record()))
    (d / "junit.xml").write_text(junit if junit is not None else _junit())
    return d


def merge(tmp_path: Path, d: Path, capsys) -> tuple[int, str]:
    rc = main(["merge", str(d), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def test_a_well_formed_shard_merges(tmp_path: Path, capsys) -> None:
    rc, err = merge(tmp_path, shard(tmp_path), capsys)
    assert (rc, err) == (0, "")
    assert "test_integrity[a@1.0]" in (tmp_path / "out" / "junit.xml").read_text()


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>',
        '<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/hostname">]>',
        '<!doctype x SYSTEM "http://192.0.2.1/x.dtd">',
    ],
    ids=["entity-expansion", "external-entity", "external-dtd"],
)
def test_a_junit_with_a_dtd_is_refused(tmp_path: Path, capsys, doctype: str) -> None:
    d = shard(tmp_path, junit=_junit(doctype=doctype))
    rc, err = merge(tmp_path, d, capsys)
    assert rc == 1
    assert err == (
        f"model-checks merge: error: {d}/junit.xml: holds a DTD (<!DOCTYPE or <!ENTITY); pytest writes none, "
        "and entities are never expanded here\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_huge_attribute_is_refused_fast(tmp_path: Path, capsys) -> None:
    d = shard(tmp_path, junit=_junit(attrs=f' file="{"x" * (2 * 1024**2)}"'))
    start = time.monotonic()
    rc, err = merge(tmp_path, d, capsys)
    assert time.monotonic() - start < 10
    assert rc == 1
    assert err == (
        f"model-checks merge: error: {d}/junit.xml: <testcase> attribute 'file' is 2097152 characters, over "
        "the cap of 1048576\n"
    )


def test_a_junit_linked_out_of_the_shard_is_refused(tmp_path: Path, capsys) -> None:
    outside = tmp_path / "secret.xml"
    outside.write_text(_junit())
    d = shard(tmp_path)
    (d / "junit.xml").unlink()
    (d / "junit.xml").symlink_to(outside)
    rc, err = merge(tmp_path, d, capsys)
    assert rc == 1
    assert err == (
        f"model-checks merge: error: {d}/junit.xml: the junit report is a symbolic link; it is read only "
        "as a regular file\n"
    )


def test_a_fifo_or_a_device_is_refused_without_hanging(tmp_path: Path, capsys) -> None:
    d = shard(tmp_path)
    (d / "junit.xml").unlink()
    os.mkfifo(d / "junit.xml")
    rc, err = merge(tmp_path, d, capsys)
    assert (rc, err) == (
        1,
        f"model-checks merge: error: {d}/junit.xml: the junit report is a FIFO; only regular files are read\n",
    )
    (d / "summary.json").unlink()
    (d / "summary.json").symlink_to("/dev/zero")
    rc, err = merge(tmp_path, d, capsys)
    assert (rc, err) == (
        1,
        f"model-checks merge: error: {d}/summary.json: the run record is a symbolic link; it is "
        "read only as a regular file\n",
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"shard": "1/1"}, 'shard: expected null or [K, N] with 1 <= K <= N <= 10000, got "1/1"'),
        ({"shard": [1, 10**8]}, "shard: expected null or [K, N] with 1 <= K <= N <= 10000, got list"),
        ({"shard": [True, 1]}, "shard: expected null or [K, N] with 1 <= K <= N <= 10000, got list"),
        ({"interrupted": "yes"}, 'interrupted: expected true or false, got "yes"'),
        ({"artifacts": [1]}, "artifacts[0]: expected text of at most 4096 characters, got 1"),
        ({"artifacts": "a@1.0"}, 'artifacts: expected a list of at most 1000000 entries, got "a@1.0"'),
        (
            {"expected": {"a@1.0": "integrity"}},
            "expected['a@1.0']: expected a list of at most 1000000 entries, got \"integrity\"",
        ),
        ({"reports": [7]}, "reports[0]: expected an object, got 7"),
        (
            {"reports": [{"nodeid": NODE, "when": "later", "outcome": "passed", "properties": []}]},
            'reports[0].when: expected setup or call or teardown, got "later"',
        ),
        (
            {"reports": [{"nodeid": NODE, "when": "call", "outcome": "pass", "properties": []}]},
            'reports[0].outcome: expected passed or failed or skipped, got "pass"',
        ),
        (
            {"reports": [{"nodeid": NODE, "when": "call", "outcome": "passed", "properties": [["a", "b", "c"]]}]},
            "reports[0].properties[0]: expected a [name, value] pair, got list",
        ),
        (
            {
                "reports": [
                    {"nodeid": NODE, "when": "call", "outcome": "passed", "properties": [["model_checks.x", {"a": 1}]]}
                ]
            },
            "reports[0].properties[0] value: expected a string, number, boolean or null, got dict",
        ),
        (
            {
                "reports": [
                    {
                        "nodeid": NODE,
                        "when": "call",
                        "outcome": "passed",
                        "properties": [
                            ["model_checks.artifact", "a@1.0"],
                            ["model_checks.serving_achieved_rate", "abc"],
                        ],
                    }
                ]
            },
            'reports[0].properties[1] (model_checks.serving_achieved_rate): expected a number, got "abc"',
        ),
        # the machine a shard ran on (issue 25) is read back for the merge's warning: as strictly as the rest
        ({"machine": "x86"}, 'machine: expected an object (cpu, isa, family, runtime, providers), got "x86"'),
        ({"machine": {"cpu": 5}}, "machine.cpu: expected text of at most 4096 characters, got 5"),
        ({"machine": {"cpu": "c", "isa": 5}}, "machine.isa: expected a list of at most 1000000 entries, got 5"),
        (
            {"machine": {"cpu": "c", "isa": ["avx2", {"a": 1}]}},
            "machine.isa[1]: expected text of at most 4096 characters, got dict",
        ),
    ],
)
def test_a_malformed_record_names_the_file_and_the_key(tmp_path: Path, capsys, change: dict, message: str) -> None:
    d = shard(tmp_path, _record(**change))
    rc, err = merge(tmp_path, d, capsys)
    assert (rc, err) == (1, f"model-checks merge: error: {d}/summary.json: {message}\n")


def test_a_record_that_says_passed_while_junit_failed_fails_the_merge(tmp_path: Path, capsys) -> None:
    d = shard(tmp_path, _record("passed"), _junit("failed"))
    rc, err = merge(tmp_path, d, capsys)
    assert rc == 1
    assert err == (
        f"model-checks merge: error: shard 1/1 in {d}: its junit.xml and summary.json disagree on 1 test(s): "
        "test_integrity[a@1.0]: failed in the junit XML, passed in the record. One of them was edited or "
        "comes from another run: rerun the shard\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_failure_only_the_junit_holds_still_fails_the_merge(tmp_path: Path, capsys) -> None:
    junit = _junit().replace(
        "</testsuite>", '<testcase classname="tests.x" name="test_own"><error message="boom"/></testcase></testsuite>'
    )
    rc, err = merge(tmp_path, shard(tmp_path, junit=junit), capsys)
    assert rc == 1 and "1 artifact(s) with a failing check or lost" in err


def test_a_record_claiming_a_hundred_million_shards_is_refused_small_and_fast(tmp_path: Path, capsys) -> None:
    d = shard(tmp_path, _record(shard=[1, 10_000]))
    rc, err = merge(tmp_path, d, capsys)
    assert rc == 1
    assert err.startswith(
        "model-checks merge: error: shard(s) 2/10000, 3/10000, 4/10000, 5/10000, 6/10000 and 9994 more "
        "missing: only 1 of 10000 given"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "1/100000000",
            "argument --model-checks-shard: '1/100000000': 100000000 shards is more than the 10000 the gate deals",
        ),
        (
            "2/3",
            "model-checks: --model-checks-shard 2/3: the tree has 2 group(s) of artifacts (an artifact with those it "
            "shares a model with), so at most 2 shard(s) hold any; lower N",
        ),
    ],
)
def test_a_shard_count_that_does_not_fit_is_a_usage_error(pytester, value: str, message: str) -> None:
    A.onnx_artifact(pytester.path / "arts" / "a", name="a")
    A.onnx_artifact(pytester.path / "arts" / "b", name="b")
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "--model-checks-shard", value)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert message in r.stderr.str()


def test_record_text_cannot_split_summary_rows_or_carry_markup(tmp_path: Path, capsys) -> None:
    rec = _record()
    rec["reports"][0]["properties"] += [["model_checks.precision", "fp32 | pass | <script>x</script>[a](javascript:b)"]]
    rc, err = merge(tmp_path, shard(tmp_path, rec), capsys)
    assert (rc, err) == (0, "")
    summary = (tmp_path / "out" / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| `a@1.0`"))
    assert "<script>" not in summary and "[a](javascript:" not in summary  # the brackets are escaped: no link
    assert "fp32 \\| pass \\| &lt;script&gt;x&lt;/script&gt;\\[a\\](javascript:b)" in row
