"""A shard's junit.xml and summary.json as `model-checks merge` reads them: files a CI job uploaded, which a pull
request can shape. Each is a regular file under a size cap, opened without following links; XML with a DTD is
refused (no entity expansion, no external entities); every field of the record is checked, and a bad one is an
error that names the file and the key, never a traceback. The verdicts of both are derived here, to be compared."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from model_checks.core.argtypes import MAX_SHARDS
from model_checks.core.errors import ModelChecksError
from model_checks.safety.files import read_regular, read_regular_text

MAX_JUNIT_BYTES = 256 * 1024**2
MAX_RECORD_BYTES = 256 * 1024**2
MAX_ATTRIBUTE_BYTES = 1024**2  # junitparser (lxml) takes quadratic time in an attribute's length: 48 MB took 34 s
MAX_ENTRIES = 1_000_000  # artifacts, reports or testcases in one shard
MAX_TEXT = 4096  # an artifact id, a node id, a property name
WHENS = ("setup", "call", "teardown")
OUTCOMES = ("passed", "failed", "skipped")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class BadShardFile(ModelChecksError):
    what = "bad shard report"


def read_junit(path: Path) -> bytes:
    """The junit XML, checked: a regular file under the cap, no DTD, well formed, no attribute over the cap, every
    testcase named and every time a number."""
    import xml.etree.ElementTree as ET

    data = read_regular(path, MAX_JUNIT_BYTES, "junit report")
    if _DTD.search(data):
        raise BadShardFile(
            f"{path}: holds a DTD (<!DOCTYPE or <!ENTITY); pytest writes none, and entities are never expanded here"
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise BadShardFile(f"{path}: not well-formed XML ({e})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise BadShardFile(f"{path}: the root element is <{root.tag[:40]}>, expected <testsuites> or <testsuite>")
    count = 0
    for el in root.iter():
        for key, value in el.attrib.items():
            if len(value) > MAX_ATTRIBUTE_BYTES:
                raise BadShardFile(
                    f"{path}: <{el.tag[:40]}> attribute {key[:40]!r} is {len(value)} characters, over the "
                    f"cap of {MAX_ATTRIBUTE_BYTES}"
                )
        if el.tag == "testcase":
            count += 1
            if count > MAX_ENTRIES:
                raise BadShardFile(f"{path}: more than {MAX_ENTRIES} testcases")
            if not el.get("name"):
                raise BadShardFile(f"{path}: testcase #{count} has no name")
            if el.get("time") is not None and not _is_number(el.get("time")):
                raise BadShardFile(
                    f"{path}: testcase {el.get('name', '')[:80]!r}: time {el.get('time', '')[:40]!r} is not a number"
                )
    return data


def junit_outcomes(data: bytes) -> dict[str, str]:
    """Test name -> "passed", "failed" or "skipped", as the junit XML says (an error counts as failed)."""
    import xml.etree.ElementTree as ET

    out: dict[str, str] = {}
    for case in ET.fromstring(data).iter("testcase"):
        tags = {child.tag for child in case}
        outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        name = case.get("name", "")
        if out.get(name) != "failed":  # a test with a teardown error appears twice; failed wins
            out[name] = outcome
    return out


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def _fail(path: Path, key: str, expected: str, got: Any) -> BadShardFile:
    shown = json.dumps(got)[:80] if not isinstance(got, (dict, list)) else type(got).__name__
    return BadShardFile(f"{path}: {key}: expected {expected}, got {shown}")


def _text(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _fail(path, key, f"text of at most {MAX_TEXT} characters", value)
    return value


def _list(path: Path, key: str, value: Any) -> list:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise _fail(path, key, f"a list of at most {MAX_ENTRIES} entries", value)
    return value


def read_record(path: Path, schema: int) -> dict:
    """A shard's run record (summary.json), every field the merge reads checked."""
    text = read_regular_text(path, MAX_RECORD_BYTES, "run record")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise BadShardFile(f"{path}: not a run record of model-checks ({str(e)[:200]})") from None
    if not isinstance(record, dict) or record.get("schema") != schema:
        raise BadShardFile(
            f"{path}: not a run record of model-checks schema {schema}; "
            "was it written by another version? rerun the shard with this one"
        )
    shard = record.get("shard")
    if shard is not None:
        ok = (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(x) is int for x in shard)
            and 1 <= shard[0] <= shard[1] <= MAX_SHARDS
        )
        if not ok:
            raise _fail(path, "shard", f"null or [K, N] with 1 <= K <= N <= {MAX_SHARDS}", shard)
    if not isinstance(record.get("interrupted", False), bool):
        raise _fail(path, "interrupted", "true or false", record.get("interrupted"))
    for i, aid in enumerate(_list(path, "artifacts", record.get("artifacts", []))):
        _text(path, f"artifacts[{i}]", aid)
    expected = record.get("expected", {})
    if not isinstance(expected, dict) or len(expected) > MAX_ENTRIES:
        raise _fail(path, "expected", "an object of artifact id -> check names", expected)
    for aid, names in expected.items():
        _text(path, "expected key", aid)
        for j, n in enumerate(_list(path, f"expected[{aid[:80]!r}]", names)):
            _text(path, f"expected[{aid[:80]!r}][{j}]", n)
    for i, r in enumerate(_list(path, "reports", record.get("reports", []))):
        key = f"reports[{i}]"
        if not isinstance(r, dict):
            raise _fail(path, key, "an object", r)
        _text(path, f"{key}.nodeid", r.get("nodeid"))
        if r.get("when") not in WHENS:
            raise _fail(path, f"{key}.when", " or ".join(WHENS), r.get("when"))
        if r.get("outcome") not in OUTCOMES:
            raise _fail(path, f"{key}.outcome", " or ".join(OUTCOMES), r.get("outcome"))
        for j, kv in enumerate(_list(path, f"{key}.properties", r.get("properties"))):
            if not (isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str) and len(kv[0]) <= MAX_TEXT):
                raise _fail(path, f"{key}.properties[{j}]", "a [name, value] pair", kv)
            if not (kv[1] is None or isinstance(kv[1], (str, int, float, bool))):
                raise _fail(path, f"{key}.properties[{j}] value", "a string, number, boolean or null", kv[1])
            if isinstance(kv[1], str) and len(kv[1]) > MAX_ATTRIBUTE_BYTES:
                raise _fail(
                    path, f"{key}.properties[{j}] value", f"at most {MAX_ATTRIBUTE_BYTES} characters", "(longer)"
                )
        _check_facts(path, key, r["properties"])
    return record


# The facts `verdict.record` writes, and their types: the summary formats them, so a string where a number
# belongs would end the merge with a traceback.
_NUMBER_FIGURES = ("size_mb", "rel_l2", "mae", "accuracy_drop", "serving_achieved_rate", "serving_p99_ms")


def _check_facts(path: Path, key: str, properties: list) -> None:
    for j, (name, value) in enumerate(properties):
        short = name.removeprefix("model_checks.")
        if (
            short in _NUMBER_FIGURES
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, (int, float)))
        ):
            raise _fail(path, f"{key}.properties[{j}] ({name})", "a number", value)
        if short in ("artifact", "check") and not isinstance(value, str):
            raise _fail(path, f"{key}.properties[{j}] ({name})", "text", value)


def record_outcomes(record: dict) -> dict[str, str]:
    """Test name -> "passed", "failed" or "skipped", as the record's reports say (any phase that failed fails it)."""
    out: dict[str, str] = {}
    for r in record.get("reports", []):
        name = r["nodeid"].rsplit("::", 1)[-1]
        if r["outcome"] == "failed":
            out[name] = "failed"
        elif out.get(name) != "failed" and (r["when"] == "call" or r["outcome"] == "skipped"):
            out[name] = r["outcome"]
    return out


def disagreements(junit: dict[str, str], record: dict[str, str]) -> list[str]:
    """Tests whose verdict differs between the junit XML and the run record (each as a sentence)."""
    out = []
    for name, said in record.items():
        got = junit.get(name)
        if got is None:
            out.append(f"{name}: {said} in the record, absent from the junit XML")
        elif got != said:
            out.append(f"{name}: {got} in the junit XML, {said} in the record")
    return out
