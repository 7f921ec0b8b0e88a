"""One budget measurement session in a fresh process, printed as JSON: the unit the stability and
false-alarm benchmarks repeat. Uses the library exactly as the gate does (BareBench instead of the fixture).

    .venv/bin/python bench/budget_session.py ROOT ARTIFACT_ID [--baselines DIR] [--update] [--check latency]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model_checks.checks.budgets.check import BudgetOptions, run  # noqa: E402
from model_checks.checks.budgets.measure import BareBench  # noqa: E402
from model_checks.checks.context import CheckContext  # noqa: E402
from model_checks.core.discovery import discover  # noqa: E402
from model_checks.core.pool import ModelPool  # noqa: E402


def session(
    root: Path, artifact_id: str, baselines: Path | None = None, update: bool = False, check: str = "latency"
) -> dict:
    art = next(a for a in discover([root]) if a.id == artifact_id)
    bench = BareBench()
    with ModelPool() as pool:
        result = run(
            check, CheckContext(art, pool), "cpu", bench, BudgetOptions(baselines=baselines, update_baselines=update)
        )
    info = bench.extra_info.get("model_checks", {})
    return {
        "ok": result.ok,
        "skipped": result.skipped,
        **result.figures,
        "normalized_blocks": info.get("normalized_blocks"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("artifact")
    ap.add_argument("--baselines", type=Path)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--check", default="latency")
    a = ap.parse_args()
    print(json.dumps(session(a.root, a.artifact, a.baselines, a.update, a.check)))


if __name__ == "__main__":
    main()
