"""The runtime-upgrade canary on a tiny tree, offline: candidates are pre-made cache directories (the pinned
onnxruntime under another version number, and a wrapper of it whose outputs move by 1%)."""

import json
import textwrap
from pathlib import Path

import pytest

from fixtures import artifacts as A
from model_checks.canary.install import COMPLETE, Candidate, cache_root, candidate_dir, install, parse_spec
from model_checks.canary.run import bisect, canary
from model_checks.cli import main
from model_checks.core.errors import ModelChecksError


def _real_onnxruntime() -> Path:
    import onnxruntime

    return Path(onnxruntime.__file__).resolve().parent


def fake_candidate(cache: Path, version: str, shift: float | None = None) -> Path:
    """A cached candidate `onnxruntime==version`: the installed onnxruntime as it is (shift None), or wrapped so that
    every float output is multiplied by 1 + shift."""
    d = candidate_dir(Candidate("onnxruntime", version), cache)
    d.mkdir(parents=True)
    real = _real_onnxruntime()
    if shift is None:
        (d / "onnxruntime").symlink_to(real, target_is_directory=True)
    else:
        (d / "onnxruntime").mkdir()
        (d / "onnxruntime" / "__init__.py").write_text(
            textwrap.dedent(f"""
            import importlib.util, sys
            _real = {str(real)!r}
            _spec = importlib.util.spec_from_file_location(
                "onnxruntime", _real + "/__init__.py", submodule_search_locations=[_real])
            _mod = importlib.util.module_from_spec(_spec)
            sys.modules["onnxruntime"] = _mod
            _spec.loader.exec_module(_mod)
            _run = _mod.InferenceSession.run
            def _shifted(self, *a, **k):
                return [o * (1 + {shift!r}) if getattr(o, "dtype", None) is not None and o.dtype.kind == "f" else o
                        for o in _run(self, *a, **k)]
            _mod.InferenceSession.run = _shifted
        """)
        )
    meta = d / f"onnxruntime-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: onnxruntime\nVersion: {version}\n")
    (d / COMPLETE).write_text(f"onnxruntime=={version}\n")
    return d


@pytest.fixture
def tree(tmp_path):
    A.pair(tmp_path / "arts")
    return tmp_path / "arts"


def test_a_candidate_with_the_same_kernels_is_safe_to_bump(tree, tmp_path):
    cache = tmp_path / "cache"
    fake_candidate(cache, "9.9.9")
    report = canary(Candidate("onnxruntime", "9.9.9"), [tree], cache, offline=True)
    import onnxruntime

    assert report.pinned == onnxruntime.__version__ and report.candidate == "9.9.9"
    assert report.safe and [r.id for r in report.results] == ["ref@1.0", "variant@1.0"]
    assert all(r.identical and r.rel_l2 == 0 and r.top1_flips == 0 for r in report.results)
    assert all(r.p50_pinned_ms and r.p50_candidate_ms for r in report.results)
    assert report.verdict_line() == f"onnxruntime {onnxruntime.__version__} -> 9.9.9: safe to bump: 2 of 2"
    assert "| variant@1.0 | 2 | bit-identical | 0 | 0 | 0 of 5 |" in report.table()


def test_a_candidate_whose_outputs_move_fails_naming_the_artifacts(tree, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    fake_candidate(cache, "9.9.8", shift=0.01)
    rc = main(["canary", "onnxruntime==9.9.8", str(tree), "--cache", str(cache), "--offline", "--out", str(out)])
    assert rc == 1
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if "safe to bump" in x)
    assert (
        "-> 9.9.8: safe to bump: 0 of 2; ref@1.0 drifts: output 'logits' rel_l2 0.01 > 0.001 (default (model-checks)) "
        "against the pinned runtime's outputs; variant@1.0 drifts: output 'logits' rel_l2 0.01 > 0.001" in line
    )
    data = json.loads((out / "canary.json").read_text())
    assert data["safe"] is False and data["candidate"] == "9.9.8"
    v = next(r for r in data["results"] if r["id"] == "variant@1.0")
    assert (
        v["verdict_pinned"] is True and v["verdict_candidate"] is True and v["rel_l2"] == pytest.approx(0.01, rel=1e-3)
    )
    junit = (out / "canary.xml").read_text()
    assert 'failures="2"' in junit and 'name="canary[variant@1.0-onnxruntime==9.9.8]"' in junit


def test_offline_without_the_candidate_in_the_cache_says_so(tree, tmp_path):
    with pytest.raises(
        ModelChecksError,
        match=r"onnxruntime==1.99.0 is not in the cache \(.*onnxruntime-1.99.0\) and --offline forbids installing it",
    ):
        install(Candidate("onnxruntime", "1.99.0"), tmp_path / "cache", offline=True)


def test_a_candidate_spec_names_what_is_accepted():
    assert parse_spec("onnxruntime==1.32.0") == Candidate("onnxruntime", "1.32.0")
    assert parse_spec("openvino == 2026.3.0").backend == "openvino"
    with pytest.raises(
        ModelChecksError, match=r"candidate 'torch==2.1': give one of onnxruntime==VERSION, openvino==VERSION"
    ):
        parse_spec("torch==2.1")


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_CHECKS_CACHE", str(tmp_path))
    assert cache_root() == tmp_path and cache_root(tmp_path / "x") == tmp_path / "x"


class _Report:
    def __init__(self, safe):
        self.safe = safe

    def verdict_line(self):
        return "safe" if self.safe else "drifts"


@pytest.mark.parametrize(
    ("drifting", "expected"),
    [
        ({"1.3", "1.4", "1.5"}, ("1.2", "1.3", False)),  # a drift that appears going up
        ({"1.0", "1.1"}, ("1.1", "1.2", True)),  # an old drift the newer releases no longer show
    ],
)
def test_bisect_finds_where_the_answer_flips_in_few_probes(drifting, expected):
    probed = []

    def probe(c):
        probed.append(c.version)
        return _Report(c.version not in drifting)

    releases = ["0.9", "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"]
    assert bisect("onnxruntime", "1.0", "1.5", releases, probe, say=lambda _: None) == expected
    assert len(probed) <= 4 and "0.9" not in probed and "1.6" not in probed


def test_bisect_with_the_same_answer_at_both_ends_has_nothing_to_find():
    assert (
        bisect("onnxruntime", "1.0", "1.2", ["1.0", "1.1", "1.2"], lambda c: _Report(True), say=lambda _: None) is None
    )


@pytest.mark.slow
def test_the_next_real_release_from_the_cache_is_bit_identical(tree):
    """Offline against a real candidate, where one was installed before (`model-checks canary onnxruntime==1.32.0`)."""
    cache = cache_root()
    c = Candidate("onnxruntime", "1.32.0")
    if not (candidate_dir(c, cache) / COMPLETE).is_file():
        pytest.skip(f"no cached {c.name} under {cache}; run `model-checks canary {c.name}` once with the network")
    report = canary(c, [tree], cache, offline=True)
    assert report.candidate == "1.32.0" and report.safe and all(r.identical for r in report.results)
