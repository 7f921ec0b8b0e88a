"""The table users ask for: per variant, size, latency p50 at batch 1, throughput at a larger batch, and
accuracy with its drop against the family's fp32 model on the digits test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_checks.producers.package import Packaged

THROUGHPUT_BATCH = 64
THROUGHPUT_RUNS = 20


@dataclass(frozen=True)
class Row:
    artifact: str
    size_mb: float
    latency_p50_ms: float
    throughput_per_s: float
    accuracy: float | None
    drop: float | None

    def cells(self) -> list[str]:
        acc = f"{self.accuracy:.4f}" if self.accuracy is not None else "-"
        drop = f"{self.drop:+.4f}" if self.drop is not None else "-"
        return [
            self.artifact,
            f"{self.size_mb:.4f}",
            f"{self.latency_p50_ms:.3f}",
            f"{self.throughput_per_s:,.0f}",
            acc,
            drop,
        ]


def rows(made: list[Packaged], root: Path) -> list[Row]:
    """Measure each packaged artifact; its drop is against the fp32 model of its family (its reference)."""
    from model_checks.manifest.model import TensorSpec
    from model_checks.producers.figures import target_timing

    fp32_acc = {
        p.manifest["model_name"].rsplit("_", 1)[0]: p.accuracy
        for p in made
        if p.manifest["model_name"].endswith("_fp32")
    }
    out = []
    for p in made:
        m = p.manifest
        path = p.dir / m["file"]
        specs = [TensorSpec.parse(t) for t in m["inputs"]]
        thr = target_timing(
            path, m["format"], root, specs, batch=THROUGHPUT_BATCH, threads=1, runs=THROUGHPUT_RUNS
        ).throughput_per_s
        family = next((f for f in fp32_acc if m["model_name"].startswith(f + "_")), None)
        base = fp32_acc.get(family) if family else None
        drop = base - p.accuracy if base is not None and p.accuracy is not None else None
        out.append(Row(m["model_name"], path.stat().st_size / 1e6, p.timing.p50_ms, thr, p.accuracy, drop))
    return out


def markdown(table: list[Row]) -> str:
    head = [
        "variant",
        "size MB",
        "latency p50 ms (batch 1)",
        f"throughput /s (batch {THROUGHPUT_BATCH})",
        "accuracy",
        "drop vs fp32",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in table]
    return "\n".join(lines)
