"""The GPU proof: the example TorchScript artifacts' budgets measured on the CPU and on CUDA in one gate run,
and the figures side by side. Without CUDA the gpu tests skip and the table says so (that is what CI sees).

On the device machine (torch with CUDA, no TensorFlow, no package index), from the repository root, carrying
`.whl` (wheels for the base requirements that image lacks; made here by `make gpu-wheels`):

    python3 -m pip install -q --no-index --no-deps .whl/*.whl && python3 bench/gpu_proof.py --out "$OUT"

Writes OUT/gpu_proof.md (the table) and OUT/gpu_proof.json (pytest-benchmark's raw JSON, samples included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_args(out: Path) -> list[str]:
    installed = any(e.name == "model_checks" for e in entry_points(group="pytest11"))
    return [
        sys.executable,
        "-m",
        "pytest",
        "artifacts",
        "tests/backends/test_timing.py",
        "--model-checks",
        "artifacts",
        *([] if installed else ["-p", "model_checks.plugin"]),
        "--model-checks-trust-code",
        "-p",
        "no:cacheprovider",
        # the examples' latency_ms was recorded on the development machine, not this one: reported, not gated here
        "--model-checks-latency-claim-factor",
        "0",
        "-m",
        "cpu or gpu",
        "-k",
        "traced or scripted or gpu",
        "-rs",
        "-q",
        "--benchmark-json",
        str(out / "gpu_proof.json"),
    ]


def rows(data: dict) -> list[dict]:
    out = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {}).get("model_checks", {})
        if not info:
            continue
        lat = info.get("latency_ms", {})
        out.append(
            {
                "artifact": info["artifact"],
                "check": info["check"],
                "device": info["device"],
                "target": info.get("target", ""),
                "p50": lat.get("p50"),
                "p99": lat.get("p99"),
                "n": lat.get("n"),
                "items_per_s": info.get("throughput_per_s"),
                "batch": info.get("batch_size"),
                "session_ms": info.get("session_create_ms"),
                "first_ms": info.get("first_call_ms"),
            }
        )
    return sorted(out, key=lambda r: (r["artifact"], r["check"], r["device"]))


def table(found: list[dict], skipped: list[str]) -> str:
    lines = [
        "# GPU proof: the example TorchScript budgets on the CPU and on CUDA",
        "",
        "| artifact | check | device | runs on | p50 ms | p99 ms | n | items/s | batch | session ms | first call ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in found:
        lines.append(
            f"| {r['artifact']} | {r['check']} | {r['device']} | {r['target']} | {r['p50']:.4f} | {r['p99']:.4f} | {r['n']} | "
            f"{r['items_per_s']:,.0f} | {r['batch']} | {r['session_ms']:.1f} | {r['first_ms']:.2f} |"
        )
    by = {(r["artifact"], r["check"], r["device"]): r for r in found}
    ratios = [
        f"- {a} {c}: GPU p50 {g['p50']:.4f} ms against CPU {cpu['p50']:.4f} ms ({cpu['p50'] / g['p50']:.1f}x faster on the GPU)"
        for (a, c, d), g in by.items()
        if d == "gpu" and (cpu := by.get((a, c, "cpu")))
    ]
    lines += ["", "## GPU against CPU", "", *(ratios or ["- no gpu figure: every gpu test skipped (below)"])]
    if skipped:
        lines += ["", "## Skipped", "", *[f"- {s}" for s in skipped]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "reports",
        help="where gpu_proof.md and gpu_proof.json go (default: reports/)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(pytest_args(args.out), cwd=ROOT, capture_output=True, text=True)
    print(run.stdout[-6000:], run.stderr[-2000:], sep="\n")
    data = json.loads((args.out / "gpu_proof.json").read_text()) if (args.out / "gpu_proof.json").is_file() else {}
    skipped = [line.split(": ", 1)[-1] for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    text = table(rows(data), skipped)
    (args.out / "gpu_proof.md").write_text(text, encoding="utf-8")
    print(text)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
