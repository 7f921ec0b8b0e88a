"""What localisation names and what it costs a failing check.

    PYTHONPATH=$PWD .venv/bin/python bench/localize.py

1. The three broken variants of the localisation tests (a Conv weight perturbed in the middle, a static
   int8 model with one badly calibrated layer, an fp16 model), each with its table.
2. The time a failing equivalence check takes with localisation on and off (models isolated, the default),
   on the example ONNX artifacts made to fail (tolerance rel_l2 1e-9) and on a seeded ResNet-size network
   (40 residual 3x3 Conv blocks of 256 channels at 14x14: 23.6 M parameters, 4.6 GFLOP a sample).
   Median of 3 runs each, off and on alternated in one warm session.
3. Its bounds on hostile sizes (`bounds`): a 3,000-node chain (matching alone, and the whole localisation
   under `--time-cap 3`), and a model with a 229 MB intermediate per side (peak memory of a fresh process
   that localises it under the default caps, against one that only runs both models).
   `python bench/localize.py bounds` (or `costs`) runs that part alone.

Measured 2026-12-02 on this 2-core Xeon shared with seven other test runs (load average 5-10), before (main at
9bd11f7, its package put first on sys.path) and after the bounds of issues 19, 20 and 25: three rounds of
`costs`, before and after alternated, medians of the rounds (each round itself a median of 3). The load made
single rounds vary 2-3x; under 0.3 s the difference is within that noise.

| failing check | check (s), before | added, before | check (s), after | added, after | ratio |
|---|---|---|---|---|---|
| variant@1.0 (40 residual blocks, 23.6 M parameters) | 0.676 | +5.51 | 0.588 | +2.71 | 2.0x |
| tokens_encoder_fp16@1.0 | 0.028 | +2.51 | 0.049 | +0.25 | 10x |
| tokens_encoder_int8@1.0 | 0.019 | +1.24 | 0.035 | +0.21 | 6.0x |
| digits_cnn_fp16@1.0 | 0.025 | +0.40 | 0.025 | +0.06 | 6.7x |
| digits_cnn_int8_static@1.0 | 0.033 | +0.32 | 0.031 | +0.25 | 1.3x |
| digits_keras_int8@1.0 | 0.026 | +0.08 | 0.039 | +0.19 | 0.4x (noise: 0.03 s in process) |

| hostile size | before | after |
|---|---|---|
| 3,000-node chain: matching | 16.1 s | 0.2 s (80x) |
| 3,000-node chain: localize under --time-cap 3 | 19.6 s | 1.4-1.8 s, every row |
| 6,000-node chain: matching | 71.9 s | 0.3 s |
| 6,000-node chain: localize under --time-cap 3 | 124.5 s | 0.8 s: stops, a chunk would not end in time |
| 229 MB intermediate a side: peak RSS (one plain run of both: 296 MB) | 1,862 MB (6.3x) | 316 MB (1.07x), skipped |

(Run after `costs` in the same invocation, both peak figures read 542 MB, plain run and localisation alike:
the subprocess inherits the parent's environment after the gate sessions; `bounds` alone gives the figures
above, three runs within 1 MB.)

Where the after figures came from (profiled on the 23.6 M network, 8.7 s -> 3.6 s for the table): shape
inference serialized the weights (now inputs of their shape), np.dot on float64 spun BLAS threads on the
loaded machine (now numpy sums), an array onnxruntime returns held its session's arena (results are copied),
and the final outputs took a pass of their own (the first chunk fetches them).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
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
from model_checks.localize import Caps, localize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variants(tmp: Path) -> None:
    ref = L.convnet()
    onnx.save(ref, tmp / "ref.onnx")
    int8 = L.int8_miscalibrated(ref, tmp, "relu3_out", L.inputs(32, seed=5))
    cases = {
        "conv3 weight perturbed": (L.perturbed(ref, "conv3.weight"), 1e-3),
        "int8 static, relu3_out scale / 20": (int8, 0.1),
        "fp16": (L.fp16(ref), 1e-3),
    }
    for name, (model, limit) in cases.items():
        onnx.save(model, tmp / "variant.onnx")
        found = localize(
            tmp / "variant.onnx",
            tmp / "ref.onnx",
            tmp,
            {"input": L.inputs()},
            "4 seeded samples",
            limit,
            "set in bench/localize.py",
        )
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
    A.pair(
        root / "resnet",
        L.perturbed(big, "conv20.weight", 0.05),
        big,
        inputs=[{"name": "input", "dtype": "float32", "shape": [1, 3, 14, 14]}],
        outputs=[{"name": "logits", "dtype": "float32", "shape": [1, 10]}],
    )
    ids.append("variant@1.0")
    print("\n| artifact | check, localisation off (s) | on (s) | added (s) |\n|---|---|---|---|")
    for aid in ids:
        got = timed(root, aid)
        if got is None:
            print(f"| {aid} | passes even at rel_l2 1e-9 (bit-identical outputs): nothing to localize | | |")
            continue
        off, on = got
        print(f"| {aid} | {off:.3f} | {on:.3f} | {on - off:+.3f} |")


def _chain(tmp: Path, nodes: int) -> None:
    from model_checks.localize.match import match

    ref, bad = L.chain(nodes), L.chain(nodes, perturb_at=nodes // 2)
    onnx.save(ref, tmp / "chain_ref.onnx")
    onnx.save(bad, tmp / "chain_bad.onnx")
    start = time.perf_counter()
    pairs = match(bad, ref)[0]
    matched = time.perf_counter() - start
    import numpy as np
    import onnxruntime as ort

    feeds = {"input": np.random.default_rng(0).uniform(0, 1, (1, 8)).astype(np.float32)}
    start = time.perf_counter()  # what the check does: both models opened and run once
    for name in ("chain_bad", "chain_ref"):
        ort.InferenceSession(str(tmp / f"{name}.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)
    check = time.perf_counter() - start
    try:
        caps = Caps(3.0, run_s=check)
    except TypeError:  # the package before the bounds (bench before a change)
        caps = Caps(3.0)
    start = time.perf_counter()
    found = localize(tmp / "chain_bad.onnx", tmp / "chain_ref.onnx", tmp, feeds, "1 sample", 1e-3, "bench", caps)
    took = time.perf_counter() - start
    named = found.hint.node if found.hint else "none"
    print(
        f"| {nodes}-node chain | match {matched:.2f} s ({len(pairs)} pairs); both models run once {check:.2f} s | "
        f"localize under --time-cap 3: {took:.2f} s, {len(found.rows)} rows, first named {named} |"
    )


_PEAK = """
import json, resource, sys
sys.path[:0] = [{paths}]
from pathlib import Path
import numpy as np, onnxruntime as ort
from model_checks.localize import localize
tmp = Path({tmp!r})
feeds = {{"x": np.random.default_rng(0).uniform(0, 1, (1, 256)).astype(np.float32)}}
if sys.argv[1] == "run":
    for name in ("wide_bad", "wide_ref"):
        ort.InferenceSession(str(tmp / (name + ".onnx")), providers=["CPUExecutionProvider"]).run(None, feeds)
    print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
else:
    found = localize(tmp / "wide_bad.onnx", tmp / "wide_ref.onnx", tmp, feeds, "1 sample", 1e-3, "bench")
    print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "skipped": [s for s in found.skipped if s[0] == "wide"], "rows": len(found.rows)}}))
"""


def bounds(tmp: Path) -> None:
    print("\n| hostile size | figures |\n|---|---|")
    for nodes in (3000, 6000):
        _chain(tmp, nodes)
    rows = 229_000_000 // (256 * 4)  # a 229 MB float32 intermediate per side
    onnx.save(L.broadcast(rows), tmp / "wide_ref.onnx")
    onnx.save(L.broadcast(rows, scale=1.5), tmp / "wide_bad.onnx")
    import model_checks  # the package this run measures (bench before a change: put the old tree first)

    paths = [str(Path(model_checks.__file__).resolve().parents[1]), str(ROOT)]
    script = _PEAK.format(paths=", ".join(repr(p) for p in paths), tmp=str(tmp))
    peak = {
        how: json.loads(
            subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, check=True).stdout
        )
        for how in ("run", "localize")
    }
    print(
        f"| {rows} x 256 float32 intermediate (229 MB a side) | peak RSS running both models once "
        f"{peak['run']['peak_mb']:.0f} MB; localising under the default caps {peak['localize']['peak_mb']:.0f} MB; "
        f"skipped: {peak['localize'].get('skipped')} |"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as t:
        if sys.argv[1:] == ["bounds"]:
            bounds(Path(t))
        elif sys.argv[1:] == ["costs"]:
            costs(Path(t))
        else:
            variants(Path(t))
            costs(Path(t))
            bounds(Path(t))
