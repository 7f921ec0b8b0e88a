import json

import pytest

from model_checks.checks.budgets.baseline import KEEP_SESSIONS, MIN_SESSIONS, Baseline, BaselineStore
from model_checks.checks.budgets.compare import INCONCLUSIVE, NOT_COMPARED, REGRESSION, UNCHANGED
from model_checks.checks.budgets.fingerprint import differences, fingerprint

BLOCKS = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]


def baseline(fp, sessions=3):
    """A baseline taken in `sessions` quiet sessions of the same model."""
    return Baseline("tiny@1.0", "latency", "cpu", fp, BLOCKS, {"p50": 1.0}, sessions=[list(BLOCKS)] * sessions)


def test_roundtrip_is_atomic_and_readable(tmp_path):
    store = BaselineStore(tmp_path)
    fp = fingerprint("cpu", 1)
    path = store.save(baseline(fp))
    assert path == tmp_path / "tiny@1.0" / "latency-cpu.json"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    loaded = store.load("tiny@1.0", "latency", "cpu")
    assert loaded.block_medians_ms == BLOCKS and loaded.fingerprint == json.loads(json.dumps(fp)) and loaded.created
    assert store.load("tiny@1.0", "latency", "gpu") is None


def test_same_environment_is_compared():
    fp = fingerprint("cpu", 1)
    assert baseline(fp).compare(BLOCKS, fp, 0.05).verdict == UNCHANGED
    assert baseline(fp).compare([b * 1.3 for b in BLOCKS], fp, 0.05).verdict == REGRESSION


def test_a_baseline_from_too_few_sessions_cannot_make_a_regression():
    fp = fingerprint("cpu", 1)
    c = baseline(fp, sessions=1).compare([b * 1.3 for b in BLOCKS], fp, 0.05)
    assert c.verdict == INCONCLUSIVE and c and c.change == pytest.approx(0.3, abs=0.02)
    assert f"holds 1 session(s) and {MIN_SESSIONS} are needed" in str(
        c
    ) and "--model-checks-update-baselines 2 more time(s)" in str(c)


def test_another_environment_is_never_compared_silently():
    fp = fingerprint("cpu", 1)
    other = {**fp, "threads": 4, "versions": {**fp["versions"], "onnxruntime": "0.0.1"}}
    c = baseline(other).compare([b * 1.3 for b in BLOCKS], fp, 0.05)
    assert c.verdict == NOT_COMPARED and c  # reported, not a failure
    assert (
        "threads: 4 -> 1" in str(c)
        and "versions.onnxruntime: '0.0.1' ->" in str(c)
        and "--model-checks-update-baselines" in str(c)
    )


def test_fingerprint_names_cpu_threads_and_versions():
    fp = fingerprint("cpu", 2)
    assert (
        fp["cpu"]
        and fp["cores"] >= 1
        and fp["threads"] == 2
        and "onnxruntime" in fp["versions"]
        and "numpy" in fp["versions"]
    )
    assert differences(fp, fp) == []


def test_sessions_are_pooled_and_their_disagreement_raises_the_minimum_effect():
    fp = fingerprint("cpu", 1)
    b = baseline(fp, sessions=1).updated(BLOCKS, fp, {}).updated([v * 1.12 for v in BLOCKS], fp, {})
    assert len(b.sessions) == 3 and b.normalized_sessions == []
    assert b.noise_floor() == pytest.approx(0.12, abs=0.01)
    # +10% would be a regression against quiet sessions, but these sessions already differ by 12%
    assert baseline(fp).compare([v * 1.1 for v in BLOCKS], fp, 0.05).verdict == REGRESSION
    assert b.compare([v * 1.1 for v in BLOCKS], fp, 0.05).verdict != REGRESSION
    assert b.compare([v * 1.5 for v in BLOCKS], fp, 0.05).verdict == REGRESSION


def test_only_the_last_sessions_are_kept_and_another_environment_starts_over():
    fp = fingerprint("cpu", 1)
    b = baseline(fp)
    for _ in range(7):
        b = b.updated(BLOCKS, fp, {})
    assert len(b.sessions) == KEEP_SESSIONS
    assert len(b.updated(BLOCKS, {**fp, "threads": 8}, {}).sessions) == 1


def test_calibrated_sessions_are_compared_as_multiples_of_the_calibration():
    fp = fingerprint("cpu", 1)
    norm = [v * 3 for v in BLOCKS]
    b = Baseline("tiny@1.0", "latency", "cpu", fp, BLOCKS, {}, sessions=[BLOCKS] * 3, normalized_sessions=[norm] * 3)
    # the whole session ran 30% slower, and so did the calibration: not a regression
    c = b.compare([v * 1.3 for v in BLOCKS], fp, 0.05, normalized=norm)
    assert c.verdict == UNCHANGED and c.calibrated and "calibrated" in str(c)
    # the model alone got 30% slower: a regression
    assert b.compare([v * 1.3 for v in BLOCKS], fp, 0.05, normalized=[v * 1.3 for v in norm]).verdict == REGRESSION
    # without calibration on both sides, raw block medians are compared
    assert not b.compare(BLOCKS, fp, 0.05).calibrated
    u = b.updated(BLOCKS, fp, {}, norm)
    assert len(u.sessions) == len(u.normalized_sessions) == 4
    old = Baseline("tiny@1.0", "latency", "cpu", fp, BLOCKS, {}, sessions=[BLOCKS])  # taken before calibration existed
    assert old.updated(BLOCKS, fp, {}, norm).normalized_sessions == []


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema": 1, "evil": 1}', "unexpected keyword argument 'evil'"),
        (None, "block_medians_ms: not a list of finite positive times"),
    ],
    ids=["not-json", "a-list", "unknown-key", "nan-time"],
)
def test_a_stored_baseline_this_version_did_not_write_is_refused_by_name(tmp_path, content, said):
    """Baselines may be committed, so a pull request can plant one: never compared as if it held figures."""
    from model_checks.checks.budgets.baseline import BaselineError

    store = BaselineStore(tmp_path)
    path = store.save(baseline(fingerprint("cpu", 1)))
    if content is None:  # a real baseline with one time made NaN
        data = json.loads(path.read_text())
        data["block_medians_ms"][0] = float("nan")
        content = json.dumps(data)
    path.write_text(content)
    with pytest.raises(BaselineError) as e:
        store.load("tiny@1.0", "latency", "cpu")
    assert str(e.value).startswith(f"{path}: not a baseline this version of model-checks reads (") and said in str(
        e.value
    )
    assert "delete it, or store a new one with --model-checks-update-baselines" in str(e.value)


def test_a_stored_baseline_is_read_as_a_regular_file_only_and_under_a_cap(tmp_path, monkeypatch):
    import os

    from model_checks.checks.budgets import baseline as module
    from model_checks.safety.files import UnsafeFile

    store = BaselineStore(tmp_path)
    path = store.path("tiny@1.0", "latency", "cpu")
    path.parent.mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    os.symlink(secret, path)
    with pytest.raises(UnsafeFile, match="the baseline is a symbolic link; it is read only as a regular file"):
        store.load("tiny@1.0", "latency", "cpu")
    path.unlink()
    store.save(baseline(fingerprint("cpu", 1)))
    monkeypatch.setattr(module, "MAX_BASELINE_BYTES", 100)
    with pytest.raises(UnsafeFile, match="over the cap of 100 bytes"):
        store.load("tiny@1.0", "latency", "cpu")


def test_a_baseline_that_cannot_be_stored_says_where_and_what_to_do(tmp_path):
    from model_checks.checks.budgets.baseline import BaselineError

    (tmp_path / "a-file").write_text("not a folder")
    store = BaselineStore(tmp_path / "a-file" / "baselines")
    with pytest.raises(
        BaselineError, match="the baseline cannot be stored .*point --model-checks-baselines at a folder"
    ):
        store.save(baseline(fingerprint("cpu", 1)))
