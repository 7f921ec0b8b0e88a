"""What localisation names and what it costs a failing check.

    PYTHONPATH=$PWD .venv/bin/python bench/localize.py

1. The three broken variants of the localisation tests (a Conv weight perturbed in the middle, a static
   int8 model with one badly calibrated layer, an fp16 model), each with its table.
2. The time a failing equivalence check takes with localisation on and off (models isolated, the default),
   on the example ONNX artifacts made to fail (tolerance rel_l2 1e-9) and on a seeded ResNet-size network
   (40 residual 3x3 Conv blocks of 256 channels at 14x14: 23.6 M parameters, 4.6 GFLOP a sample).
   Median of 3 runs each, off and on alternated in one warm session.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import onnx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures import artifacts as A  # noqa: E402
from fixtures import localize_models as L  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402
from model_checks.isolation.limits import Limits  # noqa: E402
from model_checks.localize import localize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variants(tmp: Path) -> None:
    ref = L.convnet()
    onnx.save(ref, tmp / "ref.onnx")
    cases = {"conv3 weight perturbed": (L.perturbed(ref, "conv3.weight"), 1e-3),
             "int8 static, relu3_out scale / 20": (L.int8_miscalibrated(ref, tmp, "relu3_out", L.inputs(32, seed=5)), 0.1),
             "fp16": (L.fp16(ref), 1e-3)}
    for name, (model, limit) in cases.items():
        onnx.save(model, tmp / "variant.onnx")
        found = localize(tmp / "variant.onnx", tmp / "ref.onnx", tmp, {"input": L.inputs()}, "4 seeded samples", limit, "set in bench/localize.py")
        print(f"\n## {name}: first named: {found.hint.node if found.hint else 'none'}")
        print(found)


def timed(root: Path, aid: str) -> tuple[float, float] | None:
    """Median seconds of the failing check with localisation off and on, alternated in one warm session."""
    gs = GateSession(roots=[root], isolation=Limits())
    art = next(a for a in gs.artifacts if a.id == aid)
    if gs.run_check("equivalence", art):  # warms the worker and the model; a passing artifact has nothing to localize
        gs.pool.close()
        return None
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for on in (False, True):
            gs.localize = on
            start = time.perf_counter()
            gs.run_check("equivalence", art)
            times[on].append(time.perf_counter() - start)
    gs.pool.close()
    return statistics.median(times[False]), statistics.median(times[True])


def costs(tmp: Path) -> None:
    root = tmp / "arts"
    shutil.copytree(ROOT / "artifacts", root)
    ids = []
    for d in sorted(root.iterdir()):
        m = d / "metadata.yaml"
        if not m.exists():
            continue
        data = yaml.safe_load(m.read_text())
        if data.get("file", "").endswith(".onnx") and str(data.get("reference", {}).get("path", "")).endswith(".onnx"):
            data["tolerance"] = {"rel_l2": 1e-9}
            m.write_text(yaml.safe_dump(data, sort_keys=False))
            ids.append(f"{data['model_name']}@{data['version']}")
    big = L.convnet(depth=40, channels=256, size=14, residual=True)
    A.pair(root / "resnet", L.perturbed(big, "conv20.weight", 0.05), big,
           inputs=[{"name": "input", "dtype": "float32", "shape": [1, 3, 14, 14]}],
           outputs=[{"name": "logits", "dtype": "float32", "shape": [1, 10]}])
    ids.append("variant@1.0")
    print("\n| artifact | check, localisation off (s) | on (s) | added (s) |\n|---|---|---|---|")
    for aid in ids:
        got = timed(root, aid)
        if got is None:
            print(f"| {aid} | passes even at rel_l2 1e-9 (bit-identical outputs): nothing to localize | | |")
            continue
        off, on = got
        print(f"| {aid} | {off:.3f} | {on:.3f} | {on - off:+.3f} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as t:
        variants(Path(t))
        costs(Path(t))
