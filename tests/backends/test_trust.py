"""Trust levels: formats that carry code are refused unless --model-checks-trust-code, judged by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures import bad_artifacts, onnx_models
from fixtures.gate_run import run_gate
from model_checks.backends import require_trust_for
from model_checks.core.errors import UntrustedFormatError

HDF5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 56
ZIP = b"PK\x03\x04" + b"\x00" * 60


@pytest.mark.parametrize(
    ("name", "content", "fmt", "refused"),
    [
        ("model.onnx", None, "onnx", False),
        ("model.keras", ZIP, "keras", False),  # a .keras zip: loaded in safe mode
        ("model.keras", HDF5, "keras", True),  # HDF5 named .keras: tf-keras's legacy loader would run its code
        ("model.h5", HDF5, "keras", True),
        ("model.bin", HDF5, "keras", True),
        ("sm", "dir", "keras", True),  # a folder loaded as Keras is a SavedModel
        ("sm", "dir", "saved_model", True),
        ("model.pt", ZIP, "torchscript", True),
    ],
)
def test_trust_is_judged_by_content(
    tmp_path: Path, name: str, content: bytes | str | None, fmt: str, refused: bool
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is None:
        onnx_models.save(onnx_models.linear(), path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    require_trust_for(path, fmt, trust_code=True)  # trusted: never refused
    if refused:
        with pytest.raises(UntrustedFormatError, match="--model-checks-trust-code"):
            require_trust_for(path, fmt, trust_code=False)
    else:
        require_trust_for(path, fmt, trust_code=False)


def test_trusted_code_formats_reach_their_backend(pytester: pytest.Pytester) -> None:
    """With the option, the refusal is gone and the backend's own checks speak (here: not a TorchScript archive)."""
    root, outside = pytester.path / "artifacts", pytester.path / "outside"
    bad_artifacts.build_all(root, outside, ["pickled_pt", "torchscript"])
    run = run_gate(pytester, root, "--model-checks-trust-code")
    for case, phrase in (
        ("pickled_pt", "a pickled torch.save() checkpoint is not TorchScript"),
        ("torchscript", "zip"),
    ):
        message = run.message("integrity", f"{case}@1.0")
        assert "refused to load" not in message and phrase in message, message


def test_help_explains_the_threat_model(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    for phrase in (
        "--model-checks-trust-code",
        "Threat model: artifacts come from pull requests",
        "a model file can be a program",
        "Set this only in CI jobs for trusted branches",
        "--model-checks-isolate=MODE",
        "--model-checks-timeout=SECONDS",
        "--model-checks-worker-memory=MIB",
    ):
        assert phrase in text, phrase
