"""Collecting 1,000 generated artifacts: wall time, and which ML frameworks got imported (none may).

    .venv/bin/python bench/collect.py [N]

Builds N small ONNX artifact directories (manifests with a shared model file per artifact), then times
`pytest --collect-only` over them in a fresh process, three times, and reports the median.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import artifacts as A  # noqa: E402
from fixtures import onnx_models as M  # noqa: E402

HEAVY = ("torch", "tensorflow", "tf_keras", "onnxruntime")
PROBE = """
import sys
def pytest_collection_finish(session):
    heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))
    print("BENCH", len(session.items), heavy)
"""


def build_tree(root: Path, n: int) -> Path:
    """`n` small ONNX artifacts under `root` (bench/overhead.py's row b collects the same tree)."""
    model = M.linear()
    for i in range(n):
        A.onnx_artifact(
            root / f"a{i:04d}",
            model,
            name=f"model{i}",
            version="1.0",
            opset=13,
            precision="fp32",
            tolerance={"rel_l2": 1e-3},
            limits={"opset": {"min": 13}},
            reference={"path": "model.onnx"},
        )
    return root


def main(n: int = 1000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        build_tree(Path(tmp) / "arts", n)
        (Path(tmp) / "conftest.py").write_text(PROBE % (HEAVY,))
        times, line = [], ""
        for _ in range(3):
            t = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "--collect-only",
                    "-q",
                    "--model-checks",
                    "arts",
                    "-p",
                    "no:cacheprovider",
                    "-s",
                ],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - t)
            line = next(
                (x for x in out.stdout.splitlines() if x.startswith("BENCH")), out.stdout[-500:] + out.stderr[-500:]
            )
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "--co",
                "-s",
                "--version",
            ],
            cwd=tmp,
            capture_output=True,
        )
        startup = time.perf_counter() - t
    result = {
        "artifacts": n,
        "collect_wall_s_median": round(statistics.median(times), 3),
        "runs_s": [round(x, 3) for x in times],
        "pytest_startup_s": round(startup, 3),
        "probe": line,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
