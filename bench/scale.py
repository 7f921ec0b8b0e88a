"""From one core to a cluster: wall time and model loads of one gate run at each size, on a generated tree.

    .venv/bin/python bench/scale.py [N] [--examples]

Builds N small ONNX artifacts (a reference and three variants of it per group of four, so shared references
matter), optionally plus the example artifacts (`--examples`, gated with --model-checks-trust-code), and runs
the gate over them: `-n 0`; `-n 2` with xdist's plain `--dist load` (`--model-checks-dist load`) and with the
artifact grouping; 4 shards one after another plus `model-checks merge`; and `model-checks run --ray` on a
local Ray with 2 CPUs. Every parallel or sharded result's verdicts (junit outcome per test) and summary.md
are compared with the `-n 0` run's, and the benchmark fails when one differs. It also times the machinery
alone: xdist start-up (`-n 2` minus `-n 0` on a one-artifact tree) and Ray start-up (init and shutdown).
Prints one JSON object.

Measured on the project's shared 2-core machine (load average about 4 from other jobs, so every figure is
noisy), 200 artifacts (2,000 was too slow to run here), two runs, wall seconds (model loads):
  -n 0                          11.0 (200)    10.9 (200)
  -n 2 --model-checks-dist load 12.1 (221)    14.7 (224)
  -n 2, artifact grouping       17.9 (200)    13.0 (200)
  4 shards in turn + merge      25.1 (200)    30.5 (200)   merge alone 4.7 s
  Ray local, 2 CPUs, 2 shards   21.1          28.8
  xdist start-up (-n 2 minus -n 0 on one artifact) 4.3 / 8.1 s; Ray init + shutdown 7.3 / 7.5 s.
And 2,000 artifacts (one run, load average about 1.5-2): -n 0 44.6 s (2,000 loads); -n 2 --model-checks-dist
load 62.9 s (2,040 loads); -n 2 grouped 61.7 s (2,000); 4 shards 14.1-15.7 s each; Ray local 2 CPUs 433 s; xdist
start-up 3.4 s, Ray start-up 5.2 s. The 4-shard merge then took 367 s: junitparser's add_testcase recounted the
suite on every testcase; fixed (4 x 3,000 testcases now merge in 0.22 s, were 210 s). Re-run after the fix at
2,000 (the test suite running beside it): 4 shards + merge 98.3 s, the merge 3.7 s; Ray local 93.4 s; verdicts equal.
Every run's verdicts and summary.md equalled the -n 0 run's. Tiny ONNX models cost about 0.04 s an artifact
serially here, so two busy cores never pay back xdist's start-up at this size; see the README for sizes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fixtures import artifacts as A  # noqa: E402
from fixtures import onnx_models as M  # noqa: E402
from fixtures.gate_run import junit_verdicts  # noqa: E402

LOADS = re.compile(r"model-checks: (\d+) model\(s\) loaded (\d+) time\(s\)")
GATE = ("-p", "no:cacheprovider", "-q")


def build(root: Path, n: int) -> None:
    model = M.linear()
    for i in range(n):
        g, k = divmod(i, 4)
        if k == 0:
            A.onnx_artifact(root / f"g{g:04d}_ref", model, name=f"g{g}_ref")
        else:
            A.onnx_artifact(
                root / f"g{g:04d}_v{k}",
                model,
                name=f"g{g}_v{k}",
                reference={"path": f"../g{g:04d}_ref/model.onnx"},
                tolerance={"rel_l2": 1e-3},
            )


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t, p.stdout + p.stderr


def gate(cwd: Path, roots: list[str], out: str, *extra: str) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *(a for r in roots for a in ("--model-checks", r)),
        *GATE,
        "--junitxml",
        f"{out}/junit.xml",
        "--model-checks-summary",
        f"{out}/summary.md",
        *extra,
    ]
    wall, text = timed(cmd, cwd)
    m = LOADS.search(text)
    return {
        "wall_s": round(wall, 2),
        "models": int(m[1]) if m else None,
        "loads": int(m[2]) if m else None,
        "tail": text.strip().splitlines()[-1] if text.strip() else "",
    }


def same(cwd: Path, a: str, b: str) -> bool:
    return (
        junit_verdicts(cwd / a / "junit.xml") == junit_verdicts(cwd / b / "junit.xml")
        and (cwd / a / "summary.md").read_text() == (cwd / b / "summary.md").read_text()
    )


def ray_startup() -> float:
    code = "import time, ray; t = time.perf_counter(); ray.init(num_cpus=2, include_dashboard=False); ray.shutdown(); print(time.perf_counter() - t)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return round(float(p.stdout.strip().splitlines()[-1]), 2) if p.returncode == 0 else float("nan")


def main(n: int, examples: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="model-checks-scale-") as tmp:
        cwd = Path(tmp)
        build(cwd / "arts", n)
        roots = ["arts"]
        extra: tuple[str, ...] = ()
        if examples:
            shutil.copytree(REPO / "artifacts", cwd / "examples")
            roots.append("examples")
            extra = ("--model-checks-trust-code",)
        r: dict = {"artifacts": n + (len(list((cwd / "examples").rglob("metadata.yaml"))) if examples else 0)}
        r["serial"] = gate(cwd, roots, "serial", "-n", "0", *extra)
        r["xdist_load"] = gate(cwd, roots, "load", "-n", "2", "--model-checks-dist", "load", *extra)
        r["xdist_artifact"] = gate(cwd, roots, "artifact", "-n", "2", *extra)
        shards, t = [], time.perf_counter()
        for k in range(1, 5):
            shards.append(gate(cwd, roots, f"shard{k}", "--model-checks-shard", f"{k}/4", *extra))
        merge_s, merge_out = timed(
            [sys.executable, "-m", "model_checks", "merge", *(f"shard{k}" for k in range(1, 5)), "-o", "merged"], cwd
        )
        r["shards_4_then_merge"] = {
            "wall_s": round(time.perf_counter() - t, 2),
            "merge_s": round(merge_s, 2),
            "shard_wall_s": [s["wall_s"] for s in shards],
            "loads": sum(s["loads"] or 0 for s in shards),
        }
        ray_s, ray_out = timed(
            [
                sys.executable,
                "-m",
                "model_checks",
                "run",
                "--ray",
                "--local-cpus",
                "2",
                "--shards",
                "2",
                *(a for root in roots for a in ("--model-checks", root)),
                "-o",
                "ray",
                *extra,
            ],
            cwd,
        )
        r["ray_local_2"] = {
            "wall_s": round(ray_s, 2),
            "said": [x for x in ray_out.splitlines() if x.startswith("model-checks run: ") and "wrote" not in x],
        }
        r["verdicts_equal_serial"] = {
            name: same(cwd, "serial", d)
            for name, d in (("xdist_load", "load"), ("xdist_artifact", "artifact"), ("merge", "merged"), ("ray", "ray"))
        }
        build(cwd / "one", 1)
        one0 = gate(cwd, ["one"], "one0", "-n", "0")["wall_s"]
        one2 = gate(cwd, ["one"], "one2", "-n", "2")["wall_s"]
        r["machinery"] = {
            "gate_one_artifact_n0_s": one0,
            "gate_one_artifact_n2_s": one2,
            "xdist_startup_s": round(one2 - one0, 2),
            "ray_startup_s": ray_startup(),
        }
    print(json.dumps(r, indent=2))
    return 0 if all(r["verdicts_equal_serial"].values()) else 1


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sys.exit(main(int(args[0]) if args else 2000, "--examples" in sys.argv))
