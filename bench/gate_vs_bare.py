"""The gate's wall time over the example artifacts, against a script that only loads each model and
runs the same inputs once; and where the difference goes.

    .venv/bin/python bench/gate_vs_bare.py [--runs 3] [-- extra pytest args]

Both run in fresh processes, so both pay their imports. The gate's per-test durations (pytest
--durations) are summed per check; what is left of its wall time is start-up and collection.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BARE = r"""
import sys, time, numpy as np, yaml
from pathlib import Path
t0 = time.perf_counter()
import onnxruntime as ort
for d in sorted(Path(sys.argv[1]).iterdir()):
    m = yaml.safe_load((d / "metadata.yaml").read_text())
    model = d / m["file"]
    samples = np.load(d / m["samples"]) if m.get("samples") else None
    if model.suffix == ".onnx":
        s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        feeds = {i.name: samples[i.name] for i in s.get_inputs()}
        s.run(None, feeds)
    elif model.suffix == ".keras":
        import os
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tf_keras
        mod = tf_keras.models.load_model(str(model), compile=False, safe_mode=True)
        mod(*[samples[k] for k in samples.files])
    else:
        import torch
        mod = torch.jit.load(str(model))
        mod(*[torch.from_numpy(samples[k]) for k in samples.files])
print("BARE_OK", time.perf_counter() - t0)
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode not in (0,):
        raise SystemExit(f"{cmd[:4]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return time.perf_counter() - t, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--root", default="artifacts")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()
    gate_cmd = [
        sys.executable,
        "-m",
        "pytest",
        args.root,
        "--model-checks",
        args.root,
        "--model-checks-trust-code",
        "-p",
        "no:cacheprovider",
        "-q",
        "--durations=0",
        "--durations-min=0",
        *args.pytest_args,
    ]
    bare, gate, per_check = [], [], defaultdict(list)
    for _ in range(args.runs):
        bare.append(timed([sys.executable, "-c", BARE, args.root])[0])
        wall, out = timed(gate_cmd)
        gate.append(wall)
        sums: dict[str, float] = defaultdict(float)
        for m in re.finditer(r"^([\d.]+)s (call|setup|teardown)\s+\S+::test_(\w+)\[", out, re.M):
            sums[m.group(3) if m.group(2) == "call" else f"({m.group(2)})"] += float(m.group(1))
        sums["start-up, collection, reporting"] = wall - sum(sums.values())
        for k, v in sums.items():
            per_check[k].append(v)
    result = {
        "bare_s_median": round(statistics.median(bare), 3),
        "gate_s_median": round(statistics.median(gate), 3),
        "ratio": round(statistics.median(gate) / statistics.median(bare), 2),
        "gate_breakdown_s": {
            k: round(statistics.median(v), 3)
            for k, v in sorted(per_check.items(), key=lambda kv: -statistics.median(kv[1]))
        },
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
