"""The gate's own cost (issue 24): the four rows, each beside its floor (the same work by hand), in one run,
medians of `--runs` (default 3), ratios printed.

    PYTHONPATH=$PWD .venv/bin/python bench/overhead.py [--runs 3] [--rows a,b,c,d] [--json out.json]

a. ONNX backend-test artifacts (the onnx wheel's `backend/test/data/{node,pytorch-converted,...}` with their
   recorded test data, as tests/backends/onnx/test_backend_testdata.py reads them): the gate, against one process
   that loads each model with onnxruntime and compares every test_data_set with numpy. Printed beside it: pytest
   alone running as many trivial parametrized items with the gate's flags (its own start-up and per-item cost).
   `--python PATH` runs the row (and row d) again under that interpreter, e.g. a venv with the package's base
   install only (`python3.11 -m venv V && V/bin/pip install -c requirements/constraints.txt .`): what an ONNX-only
   team's CI has, without this repository's dev plugins (hypothesis, anyio, xdist), which pytest loads on every run
   here.
b. Collecting 1,000 artifacts (bench/collect.py's tree): `pytest --collect-only` with the gate, against pytest
   collecting as many trivial parametrized items.
c. `model-checks serve` (digits_cnn_fp32, batch 1, closed loop at 1 and 4 connections, driven by wrk when it is
   on PATH, else by the project's own load generator; `--c-load` chooses) against the same KServe v2 route in a
   bare Starlette + uvicorn + onnxruntime app (both on h11 and asyncio, access log off), on loopback; JSON bodies
   (the headline), then the same tensors with the binary tensor extension on both sides.
d. A large fp32 model with external data and its fp16 variant: peak RSS (the process tree's, sampled from
   /proc) and wall time of the gate, against one process opening both and running the samples. With `--d-sha256`,
   again with a sha256 declared in both manifests, against the same process hashing each model's files first.

Every figure is a whole process (imports included) on the same loaded machine, a row's gate and floor run
alternately, so the ratio is what counts, not the seconds. Ratios: time gate/floor (rows a, b, d), throughput
gate/floor (row c), peak RSS gate/floor (row d).

This onnx wheel ships pytorch-converted, pytorch-operator and simple (not node): 97 of their cases load in
onnxruntime and match their recorded outputs, and make row a's tree.

Where the seconds went before issue 24 (cProfile, `python -m cProfile -m pytest ...` over row a's tree and
`--collect-only` over row b's; profiled seconds, 2-core machine shared with seven other engineers):

    golden run, 97 artifacts, 582 items (25.7 s profiled; 10.4 s unprofiled, 4.7 s of it inside the session)
      pytest start-up, config, plugin entry points              3.5   (hypothesis's plugin: 3.3 more at the summary)
      importing model_checks, compiled + assertion-rewritten    5.4   (no bytecode written on this machine)
      discovery: manifests (schema 0.7), path resolution 1.1    1.2
      collection of the items                                    0.8
      checks (run_check)                                         7.7
        worker round trips (485: 5 an artifact)                  5.8   of which waiting on the worker 3.6
          in the worker: checker 0.43, load 0.22, facts 0.05     0.7   (measured in process)
        test data read in the parent (.pb)                       0.6
        releases (a round trip each)                             1.0
    collection, 1,000 artifacts, 6,000 items (10.0 s profiled)
      discovery: manifest read 2.7 (schema 1.7, YAML 0.75), paths 1.7   3.6
      items: pytest's Function() 2.0, of which fixture closure 1.5      2.9
      models_of / release plan (paths resolved again per item)          1.3

Ratios (medians, gate / floor; row c throughput, so higher is better), each a whole run of this file on the 2-core
machine; 9bd11f7 is before issue 24, 5c947d8 its first round, e8e4d9f its second, 3964fea its third (`--runs 3`,
then `--runs 5` for a, b, d), 8b807ba its fourth (73be5e7 and 8b807ba, `--runs 5` for a, b, d), all on a nearly idle
machine (load 1 or below); 6375b15 its fifth, `--runs 5` for a, b, d in two invocations alternating with
8cdcb71 (a 3.78x / 3.89x, base 3.31x / 3.34x, b 1.23x / 1.26x, d 1.42x / 1.40x, base 1.32x / 1.30x beside them),
on a machine loaded 1.2-1.4 from outside (floors 5-15 % slower); "now" its seventh: 354b452 (the look-ahead of
abfa1f9 and its fixes), `--runs 3` for every row, then `--runs 5` for a and d, then a under the base install, on a
nearly idle machine faster than before (row a's floor 0.26-0.28 s; row d's floor read 2.07 s, then 1.41 s). Row c with the Python generator (`--c-load
python`), then with wrk (the default where it is installed; it leaves the service more of the two cores, so the
floor is faster). "base": `--python` a venv with the package's base install only (no hypothesis, anyio, xdist
plugins). "d, sha256": `--d-sha256`:

    row                                 9bd11f7     5c947d8     e8e4d9f     3964fea         8b807ba               6375b15        now              goal
    a. 97 backend-test artifacts        6.74x       6.57x       5.52x       4.30x / 4.14x   3.79/3.79/3.90/4.01x  3.58x / 3.73x  3.36/3.31/3.14x  <= 2x
    a. pytest alone, 582 trivial items                                      2.08x / 2.18x   2.13/2.13/2.15/2.24x  2.13x / 2.21x  2.11/2.08/1.96x
    a. base install                                                                         3.44x                 3.13x / 3.16x  2.94x            <= 2x
    a. base install, pytest alone                                                           1.67x                 1.60x / 1.58x  1.48x
    b. collect 1,000 artifacts          2.64x       2.18x       1.52x       1.31x / 1.25x   1.19/1.21/1.22/1.22x  1.26x / 1.26x  1.22x            <= 1.3x
    c. serve, 1 / 4 conn., Python       0.41/0.38x  0.39/0.35x  0.47/0.49x  0.45/0.89x      0.49/0.95x            0.47/0.89x                      >= 0.7x
    c. the same, wrk                                            0.35/0.37x  0.38/0.62x      0.37/0.62, 0.40/0.65x 0.40/0.66x     0.43/0.61x       >= 0.7x
    d. 403 MB fp32 + fp16, peak RSS     1.94x       1.17x       1.15x       1.15x           1.15x                 1.15x          1.15x            <= 1.3x
    d. the same, wall time              1.59x       2.47x       1.46x       1.42x / 1.40x   1.38/1.40/1.41/1.40x  1.36x / 1.38x  0.95x, 1.33x     <= 1.3x
    d. base install, wall time                                                              1.28x / 1.30x         1.30x / 1.29x                   <= 1.3x
    d, sha256, wall time (8cdcb71: 1.26/1.21x, 1.24/1.23x)                                                        1.04/1.06x, 1.07/1.08x

Now (idle machine): an artifact's requests, its test data's inference included, go to its worker in one write
and nothing else is waited on; the checks' onnxruntime sessions do not spin between runs; the spare worker's
process starts when the plugin loads, imports numpy while pytest starts and learns its framework at configure; the
gate's own process imports no onnx on row a and compares without BLAS threads, from one float64 copy of each side;
a variant's reference is hashed (with a sha256 declared) while its worker loads it; the next artifact's model (at
most 16 MiB) is checked, loaded and run while this one's checks run. What is left of row a is pytest's own
start-up and items (2.0-2.1x of the floor alone in the dev venv, 1.5x in the base install) and the second
interpreter; of row b about 0.085 ms a manifest; of row c the gate's own work a request, beside a process hop that
costs about 50 us (the floor with a hop is printed beside the floor: README, "What the gate itself costs"); of row d
pytest's start-up and end around the same loads (in the dev venv, hypothesis's and anyio's plugins too).

b304834, `--runs 3`, idle machine: a 3.35x (pytest alone 2.09x), b 1.21x, c 0.43x / 0.60x (hop floor 0.80x / 0.71x),
d 1.35x time, 1.15x memory. Row c's CPU a request (printed since then): at 4 connections the gate's service is
CPU-bound at 336 us against the hop floor service's 218 us; the goal needs about 295 us (README).

460b798, `--runs 3`, idle machine: a 3.06x (pytest alone 2.04x), b 1.03x, c 0.65x / 0.64x with wrk (hop floor
0.81x / 0.71x), 0.70x / 0.87x with the Python generator, d 1.33x time (1.27x in a run before), 1.15x memory. The
interpreter's exit no longer walks the gate's heap (50-100 ms of rows a, b, d); a service's worker stays awake
between requests (waking it cost the service 440 -> 300 us of CPU a request at one connection); README.

531d488, `--runs 3`, idle machine: a 3.09x (pytest alone 2.05x), b 1.02x, c 0.69x / 0.69x with wrk (binary 0.59x /
0.63x; hop floor 0.77x / 0.69x, the gate 0.89x / 0.99x of it), d 1.29x time, 1.15x memory. A service's requests are
read in the model's worker (the service's CPU a request 282-340 -> 241-300 us); README. Again at a9ca11f: a 3.11x
(pytest alone 2.01x), b 1.02x, c 0.65x / 0.68x (binary 0.64x / 0.67x; the gate 0.84x / 0.99x of the hop floor), d
1.30x time, 1.15x memory.

4030289, two runs of `--runs 3 --python <base install>`, idle machine: a 2.81x / 3.00x (pytest alone 1.99x / 2.07x),
base install 2.44x / 2.36x (pytest alone 1.35x / 1.35x), b 1.00x / 1.01x, c 0.69x / 0.69x and 0.73x / 0.75x with wrk
(binary 0.64x / 0.67x and 0.62x / 0.67x; the gate 0.90x / 1.00x and 0.90x / 1.05x of the hop floor), d 1.24x / 1.26x
time (base install 1.18x / 1.18x), 1.15x memory. numpy is imported with one OpenBLAS thread in the gate's processes
(core/lazy.import_numpy): its threads spun at import beside the other busy process, doubling the import (row a,
interleaved six times: base install 0.79 -> 0.73 s, dev venv 0.92 -> 0.88 s; row d 1.87 -> 1.81 s); README.

56bee07, two runs of `--runs 3 --python <base install>` on an AMD EPYC (AVX-512, VNNI) 2-core machine, noisier than
the Intel one: a 2.59x / 2.91x (pytest alone 1.84x / 2.40x), base install 2.66x / 2.43x (pytest alone 1.59x / 1.45x),
b 0.88x / 0.62x, c 0.57x / 0.45x and 0.78x / 0.75x with wrk (the gate 0.66x / 0.61x and 1.24x / 1.09x of the hop
floor), d 1.42x / 1.48x time (base install 1.39x / 1.21x), 1.14x memory. Row a, 88fc3d0 and 56bee07 interleaved 20
times (base install): 0.94 -> 0.83 s, the gate's own CPU 0.84 -> 0.73 s: a gate-only run freezes what collection left
(the collector's full passes, pytest's two at the end included, walked it all: 85 -> 13 ms), and at the first artifact
reads ahead what the next artifacts need while its worker starts (the first wait, 55-100 ms, is gone); README.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collect import bytecode  # noqa: E402  (bench/ is this script's folder)

ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1"}
SETS = ("node", "pytorch-converted", "pytorch-operator", "simple")

# -- a. backend-test artifacts ----------------------------------------------------------------------------------

BARE_A = r"""
import sys, numpy as np, onnx
from pathlib import Path
from onnx import numpy_helper
import onnxruntime as ort
o = ort.SessionOptions(); o.log_severity_level = 4
def read(p):
    t = onnx.TensorProto(); t.ParseFromString(p.read_bytes()); return numpy_helper.to_array(t)
bad = 0
for d in sorted(Path(sys.argv[1]).iterdir()):
    if not d.is_dir():
        continue
    s = ort.InferenceSession(str(d / "model.onnx"), o, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    for ds in sorted(d.glob("test_data_set_*")):
        ins = [read(p) for p in sorted(ds.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))]
        outs = [read(p) for p in sorted(ds.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))]
        got = s.run(None, dict(zip(names, ins)))
        for g, e in zip(got, outs):
            g, e = np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64)
            if not np.allclose(g, e, rtol=1e-3, atol=1e-5, equal_nan=True):
                bad += 1
print("BARE_OK", bad)
"""


def backend_tree(root: Path, n: int) -> int:
    """`n` backend-test cases onnxruntime runs and matches, each an artifact with `reference.path: .`."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from fixtures import artifacts as A

    data = Path(onnx.__file__).parent / "backend" / "test" / "data"
    opts = ort.SessionOptions()
    opts.log_severity_level = 4

    def read(p: Path) -> np.ndarray:
        t = onnx.TensorProto()
        t.ParseFromString(p.read_bytes())
        return numpy_helper.to_array(t)

    kept = 0
    for s in SETS:
        if not (data / s).is_dir():  # this wheel ships pytorch-converted, pytorch-operator and simple, not node
            continue
        for d in sorted((data / s).iterdir()):
            if kept >= n:
                return kept
            sets = sorted(d.glob("test_data_set_*"))
            if not (d / "model.onnx").is_file() or not sets or (d / "model.onnx").stat().st_size > 4_000_000:
                continue
            try:
                sess = ort.InferenceSession(str(d / "model.onnx"), opts, providers=["CPUExecutionProvider"])
                ins = [read(p) for p in sorted(sets[0].glob("input_*.pb"))]
                outs = [read(p) for p in sorted(sets[0].glob("output_*.pb"))]
                if len(ins) != len(sess.get_inputs()) or any(x.dtype.kind not in "fiub" for x in ins + outs):
                    continue
                got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), ins, strict=True)})
                if len(got) != len(outs):
                    continue
                if not all(np.allclose(g, e, rtol=1e-3, atol=1e-5) for g, e in zip(got, outs, strict=True)):
                    continue
            except Exception:
                continue
            name = f"{s}_{d.name}".replace("-", "_")
            shutil.copytree(d, root / name)
            A.write_manifest(
                root / name, {"model_name": name, "version": "1", "file": "model.onnx", "reference": {"path": "."}}
            )
            kept += 1
    return kept


def gate_cmd(root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(root),
        "--model-checks",
        str(root),
        "-p",
        "no:cacheprovider",
        "-q",
        "-m",
        "not cpu and not gpu",
        *extra,
    ]


def timed(cmd: list[str], cwd: Path, ok=(0,), sample_rss: bool = False) -> tuple[float, str, int]:
    """Wall seconds, stdout and (when asked) the process tree's peak RSS in bytes."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeRss(proc.pid) if sample_rss else None
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    peak = sampler.stop() if sampler else 0
    if proc.returncode not in ok:
        raise SystemExit(f"{cmd[:5]} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return wall, out, peak


def row_a(runs: int, n: int, tmp: Path, python: str | None = None) -> dict:
    """The gate against the bare loop (the floor), and beside it pytest alone running as many trivial parametrized
    items with the gate's flags (pytest's own start-up and per-item cost, the part of the ratio no plugin removes).
    `python`: the interpreter all three run under (default: this one), e.g. a venv holding only the package's base
    install, as an ONNX-only team's CI has it, without this repository's dev plugins (hypothesis, anyio, xdist)."""
    import re

    py = python or sys.executable
    root = tmp / "backend"
    if not root.is_dir():  # one tree for every interpreter row a runs under
        root.mkdir()
        backend_tree(root, n)
    kept = sum(1 for d in root.iterdir() if d.is_dir())
    trivial = tmp / "pytest_alone"
    trivial.mkdir(exist_ok=True)
    if py != sys.executable:  # the bytecode for that interpreter too (see main)
        bytecode(py)
    gate, bare, alone, summary, items = [], [], [], "", 0
    for _ in range(runs):
        gate_s, out, _ = timed([py, *gate_cmd(root)[1:]], tmp, ok=(0, 1))
        summary = out.strip().splitlines()[-1]
        gate.append(gate_s)
        bare.append(timed([py, "-c", BARE_A, str(root)], tmp)[0])
        if not items:  # as many items as the gate ran (passed, skipped, failed...)
            items = sum(
                int(k) for k in re.findall(r"(\d+) (?:passed|skipped|failed|error|errors|xfailed|xpassed)", summary)
            )
            (trivial / "test_alone.py").write_text(FLOOR_B.format(n=items))
        cmd = [py, "-m", "pytest", "test_alone.py", "-p", "no:cacheprovider", "-q", "-m", "not cpu and not gpu"]
        alone.append(timed(cmd, trivial)[0])
    g, b, p = statistics.median(gate), statistics.median(bare), statistics.median(alone)
    return {
        "python": py,
        "pytest_plugins": pytest_plugins(py),
        "artifacts": kept,
        "gate_s": g,
        "floor_s": b,
        "ratio": g / b,
        "gate_runs": gate,
        "floor_runs": bare,
        "gate_summary": summary,
        "items": items,
        "pytest_alone_s": p,
        "pytest_alone_ratio": p / b,
        "pytest_alone_runs": alone,
    }


def pytest_plugins(python: str) -> list[str]:
    """The pytest plugins installed for `python` (entry points `pytest11`): what every pytest run there loads."""
    code = "import importlib.metadata as m; print(' '.join(sorted({e.name for e in m.entry_points(group='pytest11')})))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=ENV, check=True).stdout
    return out.split()


def print_a(r: dict) -> None:
    print(
        f"a. {r['artifacts']} backend-test artifacts: gate {r['gate_s']:.2f} s, floor {r['floor_s']:.2f} s, "
        f"ratio {r['ratio']:.2f}x  [{r['gate_summary']}]; pytest alone, {r['items']} trivial items: "
        f"{r['pytest_alone_s']:.2f} s, {r['pytest_alone_ratio']:.2f}x of the floor  "
        f"(under {r['python']}; pytest plugins: {', '.join(r['pytest_plugins']) or 'none'})",
        flush=True,
    )


# -- b. collection ----------------------------------------------------------------------------------------------

FLOOR_B = """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_item(i):
    pass
"""


def row_b(runs: int, n: int, tmp: Path) -> dict:
    """Wall time, and the CPU time of each process (user + system): on a loaded machine the wall clock mostly
    measures the neighbours, the CPU time much less so. bench/collect.py splits the same run into phases."""
    import resource

    sys.path.insert(0, str(REPO / "bench"))
    from collect import build_tree

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    base = tmp / "collect"
    build_tree(base / "arts", n)
    gate, floor, gate_cpu, floor_cpu, items = [], [], [], [], 0
    for _ in range(runs):
        c = cpu()
        wall, out, _ = timed(
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
            ],
            base,
        )
        gate_cpu.append(cpu() - c)
        gate.append(wall)
        items = int(next(x for x in out.splitlines() if "tests collected" in x or "test collected" in x).split()[0])
        fl = tmp / "floor_b"
        fl.mkdir(exist_ok=True)
        (fl / "test_floor.py").write_text(FLOOR_B.format(n=items))
        c = cpu()
        floor.append(
            timed(
                [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "test_floor.py"], fl
            )[0]
        )
        floor_cpu.append(cpu() - c)
    g, f = statistics.median(gate), statistics.median(floor)
    gc, fc = statistics.median(gate_cpu), statistics.median(floor_cpu)
    return {
        "artifacts": n,
        "items": items,
        "gate_s": g,
        "floor_s": f,
        "ratio": g / f,
        "gate_cpu_s": gc,
        "floor_cpu_s": fc,
        "cpu_ratio": gc / fc,
        "gate_runs": gate,
        "floor_runs": floor,
    }


# -- c. serving -------------------------------------------------------------------------------------------------

BARE_C = r"""
import json, sys, socket
import numpy as np, onnxruntime as ort, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
o = ort.SessionOptions(); o.log_severity_level = 4
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
DT = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8, "INT8": np.int8}
async def infer(request):
    body = await request.body()
    n = request.headers.get("inference-header-content-length")  # the binary tensor extension: JSON, then raw bytes
    doc = json.loads(body[: int(n)] if n else body)
    feeds, at = {}, int(n or 0)
    for t in doc["inputs"]:
        size = t.get("parameters", {}).get("binary_data_size")
        dt = np.dtype(DT[t["datatype"]])
        if size is None:
            feeds[t["name"]] = np.asarray(t["data"], dtype=dt).reshape(t["shape"])
        else:
            feeds[t["name"]] = np.frombuffer(body, dt, size // dt.itemsize, at).reshape(t["shape"])
            at += size
    outs = s.run(None, feeds)
    if doc.get("parameters", {}).get("binary_data_output"):
        head = json.dumps({"model_name": request.path_params["name"], "outputs": [
            {"name": m.name, "shape": list(v.shape), "datatype": "FP32", "parameters": {"binary_data_size": v.nbytes}}
            for m, v in zip(s.get_outputs(), outs)]}).encode()
        return Response(head + b"".join(v.tobytes() for v in outs), media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head))})
    return JSONResponse({"model_name": request.path_params["name"], "outputs": [
        {"name": m.name, "shape": list(v.shape), "datatype": "FP32", "data": v.ravel().tolist()}
        for m, v in zip(s.get_outputs(), outs)]})
app = Starlette(routes=[Route("/v2/models/{name}/infer", infer, methods=["POST"])])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP, so asyncio sets NODELAY
sock.bind(("127.0.0.1", 0))
print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
"""


# The bare app with its model moved into a child process (forked, fed over a socketpair: an 8-byte header and the
# shape, then the raw float32 tensor each way, the loop awaiting the answer natively, one inference at a time): what
# any design that keeps the model out of the service's process pays at least. Beside row c's floor, it says how much
# of the gate's gap is the process hop and how much the gate's own work per request (JSON bodies only).
BARE_C_HOP = r"""
import asyncio, json, os, socket, struct, sys
import numpy as np
a, b = socket.socketpair()
if os.fork() == 0:  # the child: the model, nothing else
    a.close()
    import onnxruntime as ort
    o = ort.SessionOptions(); o.log_severity_level = 4
    s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
    name, f = s.get_inputs()[0].name, b.makefile("rb")
    while head := f.read(8):
        n, nd = struct.unpack("<II", head)
        shape = struct.unpack(f"<{nd}q", f.read(8 * nd))
        out = s.run(None, {name: np.frombuffer(f.read(n), np.float32).reshape(shape)})[0].astype(np.float32)
        b.sendall(struct.pack(f"<II{out.ndim}q", out.nbytes, out.ndim, *out.shape) + out.tobytes())
    os._exit(0)
b.close()
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
a.setblocking(False)
lock = asyncio.Lock()
async def readn(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = await asyncio.get_running_loop().sock_recv(a, n - len(buf))
        if not chunk:
            raise RuntimeError("the model's process ended")
        buf += chunk
    return bytes(buf)
async def infer(request):
    t = json.loads(await request.body())["inputs"][0]
    x = np.asarray(t["data"], dtype=np.float32).reshape(t["shape"])
    async with lock:
        await asyncio.get_running_loop().sock_sendall(a, struct.pack(f"<II{x.ndim}q", x.nbytes, x.ndim, *x.shape) + x.tobytes())
        n, nd = struct.unpack("<II", await readn(8))
        shape = struct.unpack(f"<{nd}q", await readn(8 * nd))
        out = np.frombuffer(await readn(n), np.float32).reshape(shape)
    return JSONResponse({"model_name": request.path_params["name"], "outputs": [
        {"name": "logits", "shape": list(out.shape), "datatype": "FP32", "data": out.ravel().tolist()}]})
app = Starlette(routes=[Route("/v2/models/{name}/infer", infer, methods=["POST"])])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
"""


def _bare_service(model: Path, code: str = BARE_C):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([sys.executable, "-c", code, str(model)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def _feeds(body: bytes) -> dict[str, np.ndarray]:
    from model_checks.serving.protocol import DATATYPES

    doc = json.loads(body)
    return {t["name"]: np.asarray(t["data"], DATATYPES[t["datatype"]]).reshape(t["shape"]) for t in doc["inputs"]}


WRK_LUA = r"""
-- POST the bodies in turn, each with its own headers; print what the bench reads at the end
local bodies, headers, i = {BODIES}, {HEADERS}, 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, headers[i], bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50)))
end
"""


def _lua_string(data: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in data) + '"'


def _wrk_level(target, connections: int, seconds: float, script_dir: Path):  # type: ignore[no-untyped-def]
    """One closed-loop level driven by wrk (one thread, `connections` keep-alive connections, `seconds` long):
    the same bodies as the project's generator sends, in turn, from a load generator in C."""
    from model_checks.serving.load import SweepLevel

    lengths = target.header_lengths or (None,) * len(target.bodies)
    heads = [
        {"Content-Type": "application/json"}
        | ({} if n is None else {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(n)})
        for n in lengths
    ]
    lua = WRK_LUA.replace("{BODIES}", "{" + ", ".join(_lua_string(b) for b in target.bodies) + "}").replace(
        "{HEADERS}",
        "{" + ", ".join("{" + ", ".join(f'["{k}"] = "{v}"' for k, v in h.items()) + "}" for h in heads) + "}",
    )
    script = script_dir / "post.lua"
    script.write_text(lua)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            target.url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    n, duration_us, errors, p50_us = (int(v) for v in line.split()[1:])
    return SweepLevel(connections, (n - errors) / (duration_us / 1e6), p50_us / 1000, errors)


def row_c(runs: int, seconds: float, load: str = "auto") -> dict:
    from model_checks.isolation.limits import Limits
    from model_checks.serving.check import Served, request_bodies
    from model_checks.serving.load import Target, sweep
    from model_checks.serving.process import running_service
    from model_checks.serving.protocol import encode_binary_request
    from model_checks.serving.service import open_artifact

    art = open_artifact(REPO / "artifacts" / "digits_cnn_fp32")
    bodies = tuple(request_bodies(art)[:16])
    res: dict = {}
    with running_service(art, isolation=Limits()) as url, tempfile.TemporaryDirectory(prefix="mc-wrk-") as t:
        scripts = Path(t)
        gate_target = Target(Served(art, url).infer_url, bodies)
        service = descendants(os.getpid())[0]  # this process's one child so far: the gate's service (running_service)
        proc, bare_url = _bare_service(art.model_path)
        hop_proc, hop_url = _bare_service(art.model_path, BARE_C_HOP)
        try:
            bare_infer = bare_url + Served(art, bare_url).infer_url[len(bare_url) :]
            hop_infer = hop_url + Served(art, hop_url).infer_url[len(hop_url) :]
            for u in (bare_infer, hop_infer):
                _answering(u, bodies[0])
            binary = [encode_binary_request(_feeds(b)) for b in bodies]  # the same tensors, raw, binary outputs
            pairs = {
                "": (gate_target, Target(bare_infer, bodies)),
                " binary": tuple(
                    Target(t.url, tuple(b for b, _ in binary), header_lengths=tuple(n for _, n in binary))
                    for t in (gate_target, Target(bare_infer, bodies))
                ),
            }
            wrk = load == "wrk" or (load == "auto" and shutil.which("wrk") is not None)
            res["load"] = "wrk" if wrk else "python"

            def level(t: Target, c: int, pid: int | None = None):  # type: ignore[no-untyped-def]
                before = cpu_seconds(pid) if pid else None
                start = time.perf_counter()
                got = _wrk_level(t, c, seconds, scripts) if wrk else sweep(t, (c,), 100_000, seconds).levels[0]
                if before is not None:  # CPU a request: the service's own process, then its children (the model's)
                    after, n = cpu_seconds(pid), got.throughput_per_s * (time.perf_counter() - start)
                    cpu[(pid, c)].append(tuple((a - b) / n * 1e6 for a, b in zip(after, before)))
                return got

            cpu: dict = collections.defaultdict(list)

            hop_t = Target(hop_infer, bodies)
            for kind, (gate_t, bare_t) in pairs.items():
                for c in (1, 4):
                    g, f, h = [], [], []
                    for _ in range(runs):
                        g.append(level(gate_t, c, None if kind else service))
                        f.append(level(bare_t, c))
                        if not kind:  # JSON bodies: the floor with the process hop too
                            h.append(level(hop_t, c, hop_proc.pid))
                    gr = statistics.median(x.throughput_per_s for x in g)
                    fr = statistics.median(x.throughput_per_s for x in f)
                    res[f"c{c}{kind}"] = {
                        "gate_per_s": gr,
                        "floor_per_s": fr,
                        "ratio": gr / fr,
                        "gate_p50_ms": statistics.median(x.p50_ms for x in g),
                        "floor_p50_ms": statistics.median(x.p50_ms for x in f),
                        "errors": sum(x.errors for x in g + f + h),
                    }
                    if h:
                        hr = statistics.median(x.throughput_per_s for x in h)
                        res[f"c{c}{kind}"] |= {
                            "hop_floor_per_s": hr,
                            "hop_floor_ratio": hr / fr,
                            "gate_to_hop": gr / hr,
                            "gate_cpu_us": [statistics.median(x) for x in zip(*cpu[(service, c)])],
                            "hop_cpu_us": [statistics.median(x) for x in zip(*cpu[(hop_proc.pid, c)])],
                        }
        finally:
            for p in (proc, hop_proc):
                p.terminate()
                p.wait(10)
    return res


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, its children first, then theirs, ..., from one reading of /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [], collections.deque(children.get(pid, []))
    while todo:  # breadth first: the children come first
        p = todo.popleft()
        found.append(p)
        todo += children.get(p, [])
    return found


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of process `pid` itself and of its descendants alive now, summed."""

    def own(p: int) -> float:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    return own(pid), sum(own(p) for p in descendants(pid))


def _answering(url: str, body: bytes) -> None:
    """Wait until the service at `url` answers an inference (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(
                urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=5
            ).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- d. a large model with external data and its fp16 variant ---------------------------------------------------

BARE_D = r"""
import sys, numpy as np, onnxruntime as ort
from pathlib import Path
root = Path(sys.argv[1])
def hashed(d):  # with --d-sha256: the files' sha256 checked against the manifest's, before the model opens
    if sys.argv[2:] == ["sha256"]:
        import hashlib  # only then: the row without sha256 keeps its floor (hashlib's libcrypto is 4 MB resident)
        h = hashlib.sha256()
        for name in ("model.onnx", "model.onnx.data"):
            with open(d / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        assert h.hexdigest() in (d / "metadata.yaml").read_text()
    return str(d / "model.onnx")
o = ort.SessionOptions(); o.log_severity_level = 4
x = np.load(root / "big_fp32" / "samples.npz")["x"]
s32 = ort.InferenceSession(hashed(root / "big_fp32"), o, providers=["CPUExecutionProvider"])
a = s32.run(None, {"x": x})[0]
del s32
s16 = ort.InferenceSession(hashed(root / "big_fp16"), o, providers=["CPUExecutionProvider"])
b = s16.run(None, {"x": x})[0]
rel = float(np.linalg.norm(a - b) / np.linalg.norm(a))
print("BARE_OK", rel)
"""


def big_tree(root: Path, width: int, layers: int, sha256: bool = False) -> float:
    """big_fp32 (weights in model.onnx.data) and big_fp16 (fp16 weights, fp32 inputs and outputs), its reference
    the fp32 model; each ships samples, and with `sha256` declares its files' digest. Returns the fp32 model's size
    in MB."""
    import hashlib

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from fixtures import artifacts as A

    rng = np.random.default_rng(0)
    ws = [(rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32) for _ in range(layers)]
    x = rng.standard_normal((4, width)).astype(np.float32)

    def graph(dtype: np.dtype) -> onnx.ModelProto:
        nodes, inits, prev = [], [], "x"
        if dtype == np.float16:
            nodes.append(helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16))
            prev = "x16"
        for i, w in enumerate(ws):
            inits.append(numpy_helper.from_array(w.astype(dtype), f"w{i}"))
            nodes += [
                helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
                helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]),
            ]
            prev = f"t{i}"
        if dtype == np.float16:
            nodes.append(helper.make_node("Cast", [prev], ["y"], to=TensorProto.FLOAT))
        else:
            nodes.append(helper.make_node("Identity", [prev], ["y"]))
        g = helper.make_graph(
            nodes,
            "big",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
            inits,
        )
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)

    for name, dtype, extra in (
        ("big_fp32", np.float32, {}),
        ("big_fp16", np.float16, {"reference": {"path": "../big_fp32/model.onnx"}}),
    ):
        d = root / name
        d.mkdir(parents=True)
        onnx.save_model(
            graph(dtype),
            str(d / "model.onnx"),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx.data",
            size_threshold=1024,
        )
        np.savez(d / "samples.npz", x=x)
        if sha256:
            digest = hashlib.sha256((d / "model.onnx").read_bytes() + (d / "model.onnx.data").read_bytes())
            extra = {**extra, "sha256": digest.hexdigest()}
        A.write_manifest(
            d,
            {
                "model_name": name,
                "version": "1",
                "file": "model.onnx",
                "format": "onnx",
                "samples": "samples.npz",
                "precision": "fp32" if dtype == np.float32 else "fp16",
                "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", width]}],
                "tolerance": {"rel_l2": 0.01},
                **extra,
            },
        )
    (root / "policy.yaml").write_text("{}\n")
    return (root / "big_fp32" / "model.onnx.data").stat().st_size / 1e6


class TreeRss:
    """The summed RSS of a process and its descendants, sampled every 20 ms from /proc; `stop` gives the peak."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _tree(self) -> int:
        total = 0
        for pid in (self.pid, *descendants(self.pid)):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, ValueError, IndexError):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._tree())

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def row_d(runs: int, width: int, layers: int, tmp: Path, sha256: bool = False, python: str | None = None) -> dict:
    """Both sides do the whole work or the row stops: the gate must pass every check it runs (a check failing early,
    as the fp16 equivalence once did on a float16-input bug, costs less than the real run), and the floor's fp16
    outputs must match its fp32 ones within the manifests' tolerance (rel_l2 0.01). With `sha256`, both manifests
    declare one: the gate checks it (integrity), the floor hashes each model's files before opening it. `python`:
    the interpreter both run under (default: this one), as in row a."""
    py = python or sys.executable
    root = tmp / ("big_sha256" if sha256 else "big")
    if not root.is_dir():  # one tree for every interpreter row d runs under
        big_tree(root, width, layers, sha256)
    mb = (root / "big_fp32" / "model.onnx.data").stat().st_size / 1e6
    gate, bare, summary = [], [], ""
    for _ in range(runs):
        wall, out, peak = timed([py, *gate_cmd(root)[1:]], tmp, sample_rss=True)
        summary = out.strip().splitlines()[-1]  # timed() stops the row on a failed check (exit status 1)
        gate.append((wall, peak))
        w, out, p = timed([py, "-c", BARE_D, str(root), *(["sha256"] if sha256 else [])], tmp, sample_rss=True)
        if not out.startswith("BARE_OK ") or not float(out.split()[1]) < 0.01:
            raise SystemExit(f"row d: the floor's fp16 outputs do not match its fp32 ones: {out.strip()}")
        bare.append((w, p))
    gt, gm = statistics.median(x[0] for x in gate), statistics.median(x[1] for x in gate)
    bt, bm = statistics.median(x[0] for x in bare), statistics.median(x[1] for x in bare)
    return {
        "python": py,
        "fp32_mb": mb,
        "gate_s": gt,
        "floor_s": bt,
        "time_ratio": gt / bt,
        "gate_peak_mb": gm / 1e6,
        "floor_peak_mb": bm / 1e6,
        "memory_ratio": gm / bm,
        "gate_summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rows", default="a,b,c,d")
    p.add_argument("--backend-cases", type=int, default=171)
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="PATH",
        help="rows a and d again with their gate, floor (and row a's pytest alone) under this interpreter (e.g. a venv "
        "with the package's base install only, without the dev plugins); repeatable",
    )
    p.add_argument("--collect", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=3.0, help="length of each closed-loop phase of row c")
    p.add_argument(
        "--c-load", choices=("auto", "wrk", "python"), default="auto", help="row c: wrk if on PATH, else python"
    )
    p.add_argument("--width", type=int, default=4096, help="row d: the large model's width (width^2 * 4 bytes a layer)")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--d-sha256", action="store_true", help="row d again, with a sha256 declared in both manifests")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows = set(args.rows.split(","))
    bytecode()  # the package's and pytest's rewritten plugins', as an installed environment has them: the floors' have theirs
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="mc-overhead-") as t:
        tmp = Path(t)
        if "a" in rows:
            res["a"] = r = row_a(args.runs, args.backend_cases, tmp)
            print_a(r)
            for py in args.python:  # the same row under each other interpreter asked for
                res.setdefault("a_python", {})[py] = r = row_a(args.runs, args.backend_cases, tmp, py)
                print_a(r)
        if "b" in rows:
            res["b"] = r = row_b(args.runs, args.collect, tmp)
            print(
                f"b. collecting {r['artifacts']} artifacts ({r['items']} items): gate {r['gate_s']:.2f} s, "
                f"floor {r['floor_s']:.2f} s, ratio {r['ratio']:.2f}x (CPU {r['gate_cpu_s']:.2f} s vs "
                f"{r['floor_cpu_s']:.2f} s, {r['cpu_ratio']:.2f}x)",
                flush=True,
            )
        if "c" in rows:
            res["c"] = r = row_c(args.runs, args.seconds, args.c_load)
            print(f"c. load generator: {r.pop('load')}", flush=True)
            for c, v in r.items():
                print(
                    f"c. serve, {c}: gate {v['gate_per_s']:.0f}/s p50 {v['gate_p50_ms']:.2f} ms, "
                    f"floor {v['floor_per_s']:.0f}/s "
                    f"p50 {v['floor_p50_ms']:.2f} ms, ratio {v['ratio']:.2f}x"
                    + (
                        f"; floor with a process hop {v['hop_floor_per_s']:.0f}/s ({v['hop_floor_ratio']:.2f}x of the "
                        f"floor; the gate {v['gate_to_hop']:.2f}x of it); CPU a request: the gate's service "
                        f"{v['gate_cpu_us'][0]:.0f} us + its worker {v['gate_cpu_us'][1]:.0f} us, the hop floor's "
                        f"service {v['hop_cpu_us'][0]:.0f} us + its model's process {v['hop_cpu_us'][1]:.0f} us"
                        if "hop_floor_per_s" in v
                        else ""
                    )
                    + (f" ({v['errors']} errors)" if v.get("errors") else ""),
                    flush=True,
                )
        if "d" in rows:
            for py in [None, *args.python]:  # this interpreter, then each other one asked for
                for sha256 in (False, True) if args.d_sha256 else (False,):
                    key = ("d_sha256" if sha256 else "d") + (f" {py}" if py else "")
                    res[key] = r = row_d(args.runs, args.width, args.layers, tmp, sha256, py)
                    print(
                        f"d. {r['fp32_mb']:.0f} MB fp32 + fp16{', sha256 declared' if sha256 else ''}: "
                        f"gate {r['gate_s']:.2f} s, peak {r['gate_peak_mb']:.0f} MB; "
                        f"floor {r['floor_s']:.2f} s, peak {r['floor_peak_mb']:.0f} MB; "
                        f"time {r['time_ratio']:.2f}x, memory {r['memory_ratio']:.2f}x "
                        f" [{r['gate_summary']}]" + (f" (under {py})" if py else ""),
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
