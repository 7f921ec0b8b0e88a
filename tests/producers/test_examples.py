"""The example artifacts: rebuilt by the producers from the digits, byte for byte, and passed by the gate."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_checks.checks import registry
from tests.producers.helpers import assert_passes

# every check each artifact gets (the registry's, not a list of ours), the run-order the gate uses
CHECKS = tuple(name for name, check in registry().items() if check.applies is None)
REPO = Path(__file__).resolve().parents[2]


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "metadata.yaml"
    }


def _built_twice(tmp_path: Path, family: str) -> bool:
    """Build `family` into tmp_path/a and tmp_path/b (tables a.md, b.md); whether the two came out byte for byte
    the same (manifests aside: they carry the measured latency)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for out in ("a", "b"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "model_checks.examples",
                "artifacts",
                "--only",
                family,
                "--out",
                str(tmp_path / out),
                "--table",
                str(tmp_path / f"{out}.md"),
            ],
            check=True,
            env=env,
            cwd=REPO,
            capture_output=True,
        )
    return _digests(tmp_path / "a") == _digests(tmp_path / "b")


@pytest.mark.slow
def test_the_torch_family_rebuilds_identically_and_passes_the_gate(tmp_path, gate):
    from model_checks.core.session import GateSession

    assert _built_twice(tmp_path, "torch")
    assert "| digits_cnn_int8_static |" in (tmp_path / "a.md").read_text()
    root = tmp_path / "a"
    arts = GateSession(roots=[root], trust_code=True).artifacts
    assert len(arts) == 7
    for art in arts:
        results = gate(root, art.dir, *CHECKS)
        assert_passes([r for r in results if not (r.skipped and art.id == "digits_cnn_fp32@1.0")])
    (roundtrip,) = gate(root, root / "digits_cnn_fp32", "roundtrip")  # the one example opted into roundtrip: [torch]
    assert roundtrip and not roundtrip.skipped, roundtrip


def test_the_committed_artifacts_are_small():
    arts = REPO / "artifacts"
    if not arts.is_dir():
        pytest.skip("no artifacts/ in this checkout")
    sizes = {d.name: sum(p.stat().st_size for p in d.iterdir()) for d in arts.iterdir() if d.is_dir()}
    assert sizes and all(s < 500_000 for s in sizes.values()), sizes


@pytest.mark.slow
@pytest.mark.parametrize(
    "family, ids",
    [
        ("sklearn", {"digits_sklearn_fp32@1.0", "digits_sklearn_zipmap@1.0"}),
        ("transformer", {"tokens_encoder_fp32@1.0", "tokens_encoder_fp16@1.0", "tokens_encoder_int8@1.0"}),
    ],
)
def test_the_issue_10_families_build_identically_and_pass_the_gate(tmp_path, gate, family, ids):
    from model_checks.core.session import GateSession

    assert _built_twice(tmp_path, family)  # the transformer's weights and its exporter's notes
    root = tmp_path / "a"
    leaks = [p.relative_to(root).as_posix() for p in root.rglob("*.onnx") if str(REPO).encode() in p.read_bytes()]
    assert not leaks, f"the build machine's source path is inside {leaks}: a clone elsewhere builds other bytes"
    arts = GateSession(roots=[root], trust_code=True).artifacts
    assert {a.id for a in arts} == ids
    for art in arts:
        # skipped only where nothing applies: no reference for the fp32 models, no eval data for multi-input ones
        assert_passes([r for r in gate(root, art.dir, *CHECKS) if not r.skipped])
