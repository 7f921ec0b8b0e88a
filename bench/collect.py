"""Collecting 1,000 generated artifacts: where the time goes, phase by phase, beside pytest collecting as many
trivial parametrized items (bench/overhead.py's row b floor); and which ML frameworks got imported (none may).

    PYTHONPATH=$PWD .venv/bin/python bench/collect.py [N] [--runs 5]

Builds N small ONNX artifact directories (a manifest and a model file each), then runs `pytest --collect-only` over
them and over the floor, alternately, `--runs` times, each in a fresh process with a probe plugin that notes the
process's CPU time and the wall time at each phase's end; prints the medians of each phase, per artifact and per
item. CPU time (the process's own) reads much the same on a loaded machine; wall time does not.

Phases: `start` (interpreter, pytest, plugins imported, options), `configure` (the gate's configure: the checks'
registry and the session), `discover` (pytest_sessionstart: every manifest read, validated and typed), `items`
(the gate's items: pytest_collection up to the other plugins' modifyitems), `modifyitems` (the other plugins'),
`finish` (pytest_collection_finish; the release plan is made at the first teardown, so not here), `end` (the
report, session finish, exit).
"""

from __future__ import annotations

import argparse
import json
import os
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

# A plugin loaded with -p: the first and the last implementation of each hook note (wall, CPU) as they run.
PROBE = r"""
import json, os, sys, time
import pytest

T0 = float(os.environ["BENCH_LAUNCH"])
marks = {}


def note(name):
    marks[name] = (time.time() - T0, time.process_time())


class First:
    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        note("start")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session):
        note("discover")


class Last:
    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        note("configure")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        note("modifyitems")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        note("finish")
        heavy = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
        marks["n_items"] = len(session.items)
        marks["heavy"] = heavy
        import atexit

        def out():
            note("end")
            with open(os.environ["BENCH_OUT"], "w") as f:
                json.dump(marks, f)

        atexit.register(out)


class Middle:  # registered before the gate: among tryfirst hooks the later registered runs first, so the gate's first
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items):
        note("items")


def pytest_addoption(parser, pluginmanager):
    pluginmanager.register(First(), "bench_first")
    pluginmanager.register(Middle(), "bench_middle")
    pluginmanager.register(Last(), "bench_last")
""" % (HEAVY,)

FLOOR = """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_item(i):
    pass
"""
PHASES = ("start", "configure", "discover", "items", "modifyitems", "finish", "end")


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


def _run(cmd: list[str], cwd: Path, probe_dir: Path) -> dict:
    out = probe_dir / "marks.json"
    env = {
        **os.environ,
        "BENCH_LAUNCH": repr(time.time()),
        "BENCH_OUT": str(out),
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(probe_dir)) if p),
    }
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    marks = json.loads(out.read_text())
    out.unlink()
    return marks


def _phases(marks: dict, i: int) -> dict[str, float]:
    """Each phase's own duration (index 0: wall, 1: CPU); `start` from launch (CPU: from the process's start)."""
    ends = [marks[p][i] for p in PHASES]
    return {p: ends[k] - (ends[k - 1] if k else 0.0) for k, p in enumerate(PHASES)}


def bytecode(python: str = sys.executable) -> None:
    """The bytecode an installed environment has, for `python`: the package's, as a wheel's install writes it (`make
    bytecode`), and pytest's rewrite of its plugins' modules (hypothesis, xdist...), as any pytest run allowed to write
    bytecode leaves it (`make venv`). With PYTHONDONTWRITEBYTECODE set (these machines) neither is kept, and every
    timed run, the gate's and pytest alone's, would time the compiler (pytest alone: 2.4-3.2 s instead of 1.2 s here)."""
    subprocess.run(
        [python, "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "model_checks")], check=True
    )
    with tempfile.TemporaryDirectory() as empty:  # no tests: exit status 5
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=empty, env=env, capture_output=True
        )


def main(n: int = 1000, runs: int = 5) -> dict:
    bytecode()  # else the phases would time the compiler
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "gate"  # the floor's folder beside it, not under it (pytest would collect it too)
        build_tree(base / "arts", n)
        probe = Path(tmp) / "probe"
        probe.mkdir()
        (probe / "bench_probe.py").write_text(PROBE)
        floor = Path(tmp) / "floor"
        floor.mkdir()
        gate_cmd = [sys.executable, "-m", "pytest", "-p", "bench_probe", "--collect-only", "-q"]
        gate_cmd += ["--model-checks", "arts", "-p", "no:cacheprovider"]
        gate_runs, floor_runs = [], []
        for _ in range(runs):
            gate_runs.append(_run(gate_cmd, base, probe))
            items = gate_runs[-1]["n_items"]
            (floor / "test_floor.py").write_text(FLOOR.format(n=items))
            floor_cmd = [sys.executable, "-m", "pytest", "-p", "bench_probe", "--collect-only", "-q"]
            floor_cmd += ["-p", "no:cacheprovider", "test_floor.py"]
            floor_runs.append(_run(floor_cmd, floor, probe))
    table: dict[str, dict[str, float]] = {}
    for name, rs in (("gate", gate_runs), ("floor", floor_runs)):
        for i, kind in ((0, "wall"), (1, "cpu")):
            per = [_phases(r, i) for r in rs]
            table[f"{name}_{kind}"] = {p: statistics.median(x[p] for x in per) for p in PHASES}
            table[f"{name}_{kind}"]["total"] = statistics.median(r["end"][i] for r in rs)
    print(f"{n} artifacts, {items} items; medians of {runs} runs, seconds")
    print(f"{'phase':12}{'gate cpu':>10}{'floor cpu':>10}{'gate wall':>10}{'floor wall':>11}   extra cpu / artifact")
    for p in (*PHASES, "total"):
        g, f = table["gate_cpu"][p], table["floor_cpu"][p]
        print(
            f"{p:12}{g:10.3f}{f:10.3f}{table['gate_wall'][p]:10.3f}{table['floor_wall'][p]:11.3f}"
            f"   {(g - f) / n * 1e3:7.3f} ms"
        )
    g, f = table["gate_cpu"]["total"], table["floor_cpu"]["total"]
    gw, fw = table["gate_wall"]["total"], table["floor_wall"]["total"]
    print(f"ratio gate/floor: cpu {g / f:.2f}x, wall {gw / fw:.2f}x; frameworks imported: {gate_runs[-1]['heavy']}")
    result = {"artifacts": n, "items": items, "runs": runs, "phases": table, "heavy": gate_runs[-1]["heavy"]}
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the medians here")
    a = ap.parse_args()
    res = main(a.n, a.runs)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
