"""`--model-checks-shard K/N` and `model-checks merge`: three shards merged give the single run's verdicts; a
missing shard or an artifact gated twice fails the merge with what to do."""

import json
import xml.etree.ElementTree as ET

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import junit_verdicts
from model_checks.cli import main

ISO = ("--model-checks-isolate", "off", "-p", "no:cacheprovider")


@pytest.fixture
def tree(pytester):
    root = A.family_tree(pytester.path / "arts", solos=("s1", "s2", "s3", "s4"))
    A.onnx_artifact(root / "bad", name="bad", tolerence={"mae": 1})  # fails test_manifest
    return root


def gate(pytester, out, *args):
    return pytester.runpytest_subprocess(
        "--model-checks",
        "arts",
        *ISO,
        "--junitxml",
        f"{out}/junit.xml",
        "--model-checks-summary",
        f"{out}/summary.md",
        *args,
    )


def test_three_shards_merged_equal_a_single_run(pytester, tree, capsys):
    single = gate(pytester, "single")
    single.assert_outcomes(passed=23, skipped=19, failed=1)
    gated = []
    for k in (1, 2, 3):
        r = gate(pytester, f"shard{k}", "--model-checks-shard", f"{k}/3")
        r.stdout.fnmatch_lines([f"model-checks: 8 artifacts under arts/ (isolate=off, trust-code=off, shard {k}/3)"])
        gated.append(set(json.loads((pytester.path / f"shard{k}" / "summary.json").read_text())["artifacts"]))
    assert sum(map(len, gated)) == 8 and all(gated)
    assert next(g for g in gated if "ref@1.0" in g) >= {"ref@1.0", "v1@1.0", "v2@1.0"}  # a reference with its variants
    rc = main(["merge", *(str(pytester.path / f"shard{k}") for k in (3, 1, 2)), "-o", str(pytester.path / "merged")])
    assert rc == 1  # the bad manifest fails, as in the single run
    assert "model-checks merge: 1 artifact(s) with a failing check or lost" in capsys.readouterr().err
    merged = pytester.path / "merged"
    assert junit_verdicts(merged / "junit.xml", True) == junit_verdicts(pytester.path / "single" / "junit.xml", True)
    assert (merged / "summary.md").read_text() == (pytester.path / "single" / "summary.md").read_text()
    suite = ET.parse(merged / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("43", "1", "19")


def test_a_shard_is_chosen_by_the_weights_file(pytester, tree):
    ids = ["ref", "v1", "v2", "s1", "s2", "s3", "s4", "bad"]
    (pytester.path / "w.json").write_text(json.dumps({f"{i}@1.0": 1000.0 if i == "s1" else 1.0 for i in ids}))
    r = gate(
        pytester, "one", "--model-checks-shard", "1/2", "--model-checks-shard-weights", "w.json", "--collect-only", "-q"
    )
    r.stdout.fnmatch_lines(
        ["arts/s1/metadata.yaml::test_manifest[s1@1.0]", "6 tests collected*"]
    )  # the heaviest has shard 1 to itself


@pytest.mark.parametrize("value", ["0/3", "4/3", "a/b", "2"])
def test_a_bad_shard_is_named(pytester, tree, value):
    r = pytester.runpytest("--model-checks", "arts", "--model-checks-shard", value)
    r.stderr.fnmatch_lines([f"*--model-checks-shard: '{value}' is not a shard K/N with 1 <= K <= N, such as 2/4*"])


def test_a_bad_weights_file_is_a_usage_error(pytester, tree):
    (pytester.path / "w.json").write_text("{")
    r = pytester.runpytest(
        "--model-checks", "arts", *ISO, "--model-checks-shard", "1/2", "--model-checks-shard-weights", "w.json"
    )
    r.stderr.fnmatch_lines(
        ["*model-checks: --model-checks-shard-weights: w.json: not a JSON object of artifact id -> seconds*"]
    )


def _shard_dir(root, name, shard, artifacts):
    d = root / name
    d.mkdir()
    (d / "junit.xml").write_text('<testsuites><testsuite name="pytest"></testsuite></testsuites>')
    (d / "summary.json").write_text(
        json.dumps({"schema": 1, "shard": shard, "artifacts": artifacts, "expected": {}, "reports": []})
    )
    return str(d)


def test_a_missing_shard_fails_the_merge_and_writes_nothing(tmp_path, capsys):
    dirs = [_shard_dir(tmp_path, "a", [1, 3], ["x@1"]), _shard_dir(tmp_path, "c", [3, 3], ["y@1"])]
    assert main(["merge", *dirs, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert (
        f"model-checks merge: error: shard(s) 2/3 missing: only 2 of 3 given (1/3 in {dirs[0]}, 3/3 in {dirs[1]}); "
        "a lost CI job must be rerun, or its artifacts are reported as checked when they were not"
    ) in err
    assert not (tmp_path / "out").exists()


def test_an_artifact_gated_twice_fails_the_merge(tmp_path, capsys):
    dirs = [_shard_dir(tmp_path, "a", [1, 2], ["x@1", "y@1"]), _shard_dir(tmp_path, "b", [2, 2], ["y@1"])]
    assert main(["merge", *dirs, "-o", str(tmp_path / "out")]) == 1
    assert (
        f"model-checks merge: error: 1 artifact(s) gated twice: y@1 (shard 1/2 in {dirs[0]} and 2/2 in {dirs[1]}); "
        "the shards come from different trees"
    ) in capsys.readouterr().err


def test_a_folder_without_the_shard_reports_says_how_to_write_them(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    assert main(["merge", str(tmp_path / "a"), "-o", str(tmp_path / "out")]) == 1
    assert (
        f"model-checks merge: error: {tmp_path / 'a' / 'junit.xml'}: missing; run each shard with --junitxml {tmp_path / 'a'}/junit.xml "
        f"--model-checks-summary {tmp_path / 'a'}/summary.md --model-checks-shard K/N"
    ) in capsys.readouterr().err


def test_an_unsharded_run_is_not_a_shard(tmp_path, capsys):
    d = _shard_dir(tmp_path, "a", None, ["x@1"])
    assert main(["merge", d, "-o", str(tmp_path / "out")]) == 1
    assert f"the folders are not shards of one run ({d}: unsharded)" in capsys.readouterr().err


def test_the_shards_nightly_data_merge_into_one_nightly_report(pytester, tree):
    for k in (1, 2):
        gate(pytester, f"shard{k}", "--model-checks-shard", f"{k}/2", "--model-checks-nightly-report", f"shard{k}")
    assert (
        main(
            ["merge", str(pytester.path / "shard1"), str(pytester.path / "shard2"), "-o", str(pytester.path / "merged")]
        )
        == 1
    )
    text = (pytester.path / "merged" / "nightly.md").read_text()
    assert "8 artifact(s)" in text and (pytester.path / "merged" / "nightly.html").is_file()
    # the overview's ids are code spans (issue 19: an id cannot forge a row or carry markup)
    assert all(f"| `{i}@1.0` | manifest | pass |" in text for i in ("ref", "v1", "v2", "s1", "s2", "s3", "s4"))
    assert "| `invalid:bad` | manifest | FAIL |" in text and "1 check(s) failed." in text


def test_merging_junit_recounts_the_suite_once_not_once_a_testcase(tmp_path, monkeypatch):
    """junitparser's add_testcase recounts the whole suite on each call: merging 4 shards of 2,000 artifacts took
    367 s of a 427 s run (bench/scale.py 2000). The merge appends, then counts once; the counts stay right."""
    jp = pytest.importorskip("junitparser")
    from model_checks.commands.merge import merged_junit

    files = []
    for k in range(2):
        suite = jp.TestSuite("pytest")
        for i in range(300):
            case = jp.TestCase(f"test_x[a{k}_{i}]", "arts")
            if i % 3 == 0:
                case.result = [jp.Skipped("no reference")]
            suite.append(case)
        xml = jp.JUnitXml()
        xml.add_testsuite(suite)
        (tmp_path / f"s{k}.xml").write_bytes(xml.tostring())
        files.append(tmp_path / f"s{k}.xml")
    counts = []
    real = jp.TestSuite.update_statistics
    monkeypatch.setattr(jp.TestSuite, "update_statistics", lambda self: (counts.append(1), real(self))[1])
    root = ET.fromstring(merged_junit(files))
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert (suite.get("tests"), suite.get("skipped")) == ("600", "200")
    assert len(counts) <= 3, f"the suite was recounted {len(counts)} times for 600 testcases"
