"""The ONNX -> PyTorch round trip over every example ONNX artifact: which convert, the max abs difference
against onnxruntime on the artifact's equivalence cases, which are refused and why.

    PYTHONPATH=$PWD .venv/bin/python bench/roundtrip.py [ARTIFACTS_DIR]   (default: the repository's artifacts/)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model_checks.checks.context import CheckContext  # noqa: E402
from model_checks.checks.roundtrip import converted_outputs  # noqa: E402
from model_checks.core.discovery import discover  # noqa: E402
from model_checks.core.metrics import max_abs  # noqa: E402
from model_checks.core.pool import ModelPool  # noqa: E402


def main(root: Path) -> None:
    print("| artifact | result | max abs vs onnxruntime | seconds |\n|---|---|---|---|")
    with ModelPool() as pool:
        for art in discover([root]):
            if art.manifest is None or art.manifest.format != "onnx":
                continue
            ctx = CheckContext(art, pool)
            cases = ctx.cases()
            start = time.perf_counter()
            got = converted_outputs(ctx.model_path, art.root, [c.inputs for c in cases])
            took = time.perf_counter() - start
            if isinstance(got, str):
                print(f"| {art.id} | skip: {got} | | {took:.2f} |")
                continue
            worst = max(
                max_abs(out[k], ref[k])
                for c, out in zip(cases, got)
                for ref in [ctx.runner().infer(c.inputs)]
                for k in out
            )
            print(f"| {art.id} | converts | {worst:.3g} | {took:.2f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]).absolute() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "artifacts")
