"""Run every benchmark in bench/ with its defaults, one after the other (they must not overlap: they time
things), and print each one's output under its name.

    .venv/bin/python bench/run_all.py [NAME ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Helpers that other benchmarks call, not benchmarks themselves.
NOT_BENCHMARKS = {"run_all.py", "budget_session.py"}


def main() -> int:
    wanted = set(sys.argv[1:])
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name in NOT_BENCHMARKS or script.name.startswith("_") or (wanted and script.stem not in wanted):
            continue
        print(f"== {script.name}", flush=True)
        failed += subprocess.run([sys.executable, str(script)]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
