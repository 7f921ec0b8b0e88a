"""What serving costs and how far the load generator can be trusted, on this machine.

    PYTHONPATH=$PWD .venv/bin/python bench/serving.py [--seconds 3] [--json out.json]

1. The HTTP layer: digits_cnn_fp32 behind `model-checks serve` (its model in a worker process, as the
   gate runs it) against calling its session in process: p50/p99 at batch 1, and the highest
   open-loop rate sustained (>= 99% answered, no error, p99 <= 20 ms) from a ladder of rates.
2. The load generator against a no-op endpoint at 100, 500 and 1,000 requests/s: achieved against
   target, and the latency it adds by itself.
3. The example families over HTTP and in process side by side: size, p50/p99, requests/s, accuracy
   drop, fp32 against its int8 and fp16 variants.
Every service runs on loopback in its own process group and is stopped at the end of its block.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "artifacts"
LADDER = (100, 200, 300, 500, 700, 1000)
P99_LIMIT_MS = 20.0
FAMILIES = {
    "digits_cnn": ("fp32", "int8_dynamic", "int8_static", "fp16"),
    "digits_keras": ("fp32", "int8", "uint8", "fp16"),
}


def in_process(art, n: int = 500) -> dict:
    """p50/p99 and calls/s of the model's own session at batch 1, in this process (Runner.timed: no worker,
    no pipe), the baseline the HTTP figures are set against."""
    from model_checks.checks.context import CheckContext
    from model_checks.core.pool import ModelPool

    with ModelPool() as pool:
        ctx = CheckContext(art, pool)
        feeds = {k: v[:1] for k, v in ctx.cases()[0].inputs.items()}
        times = ctx.runner().timed(feeds, n, warmup=20)
    ms = np.array(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "per_s": float(n / sum(times)),
    }


def http_layer(seconds: float) -> dict:
    from model_checks.isolation.limits import Limits
    from model_checks.serving.check import Served, request_bodies
    from model_checks.serving.load import Target, open_loop, sweep
    from model_checks.serving.process import running_service
    from model_checks.serving.service import open_artifact

    art = open_artifact(ROOT / "digits_cnn_fp32")
    inproc = in_process(art)
    bodies = request_bodies(art)
    out: dict = {"in_process": inproc, "ladder": []}
    with running_service(art, isolation=Limits()) as url:
        target = Target(Served(art, url).infer_url, bodies)
        low = open_loop(target, 50, int(50 * seconds), seconds)
        out["http_at_50"] = low.as_dict()
        sustained = None
        for rate in LADDER:
            r = open_loop(target, rate, int(rate * seconds), seconds)
            ok = r.errors == 0 and r.achieved_rate >= 0.99 * rate and (r.latency_ms(99) or 1e9) <= P99_LIMIT_MS
            out["ladder"].append({**r.as_dict(), "sustained": ok})
            if ok:
                sustained = rate
        out["sustained_rate"] = sustained
        out["sweep"] = [vars(lv) for lv in sweep(target, (1, 2, 4), 2000, seconds).levels]
    return out


def generator_accuracy(seconds: float) -> list[dict]:
    from model_checks.serving.load import Target, open_loop
    from model_checks.serving.noop import noop_server

    rows = []
    with noop_server() as url:
        for rate in (100, 500, 1000):
            r = open_loop(Target(url, (b"{}",)), rate, int(rate * seconds), seconds)
            rows.append(r.as_dict())
    return rows


def families(seconds: float) -> list[dict]:
    from model_checks.isolation.limits import Limits
    from model_checks.serving.check import Served, request_bodies
    from model_checks.serving.load import Target, open_loop, sweep
    from model_checks.serving.process import running_service
    from model_checks.serving.service import open_artifact

    rows = []
    for fam, variants in FAMILIES.items():
        for v in variants:
            d = ROOT / f"{fam}_{v}"
            if not d.is_dir():
                continue
            art = open_artifact(d)
            inproc, bodies = in_process(art, 300), request_bodies(art)
            with running_service(art, isolation=Limits()) as url:
                target = Target(Served(art, url).infer_url, bodies)
                r = open_loop(target, 100, int(100 * seconds), seconds)
                peak = sweep(target, (4,), 5000, seconds).peak_per_s
            rows.append(
                {
                    "artifact": art.id,
                    "size_kb": art.model_path.stat().st_size / 1024,
                    "accuracy_drop": art.manifest.get("accuracy_drop"),
                    "in_process": inproc,
                    "http": {
                        "p50_ms": r.latency_ms(50),
                        "p99_ms": r.latency_ms(99),
                        "errors": r.errors,
                        "peak_per_s": peak,
                    },
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="length of each load phase. Default: 3")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    res = {
        "http_layer": http_layer(args.seconds),
        "generator": generator_accuracy(args.seconds),
        "families": families(min(args.seconds, 2.0)),
    }
    h = res["http_layer"]
    ip = h["in_process"]
    print("1. HTTP layer, digits_cnn_fp32, batch 1")
    print(
        f"   in process: p50 {ip['p50_ms']:.3f} ms, p99 {ip['p99_ms']:.3f} ms, {ip['per_s']:.0f} calls/s (one caller)"
    )
    print(
        f"   over HTTP at 50 req/s: p50 {h['http_at_50']['latency_ms']['p50']:.3f} ms, p99 {h['http_at_50']['latency_ms']['p99']:.3f} ms"
    )
    print(
        f"   {'target':>7} {'achieved':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  sustained (>=99%, p99<={P99_LIMIT_MS:g} ms)"
    )
    for r in h["ladder"]:
        lat = r["latency_ms"]
        print(
            f"   {r['target_rate']:>7g} {r['achieved_rate']:>9.1f} {lat['p50']:>8.2f} {lat['p99']:>8.2f} {r['errors']:>6}  {r['sustained']}"
        )
    print(
        f"   highest sustained rate: {h['sustained_rate']} req/s; closed loop: "
        + ", ".join(f"c={lv['concurrency']} {lv['throughput_per_s']:.0f}/s" for lv in h["sweep"])
    )
    print("2. load generator against a no-op endpoint")
    for r in res["generator"]:
        lat = r["latency_ms"]
        print(
            f"   target {r['target_rate']:>5g}: achieved {r['achieved_rate']:.1f} ({r['achieved_rate'] / r['target_rate']:.2%}), "
            f"added latency p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms, errors {r['errors']}"
        )
    print("3. families, batch 1: in process | over HTTP (100 req/s open loop; peak closed loop c=4)")
    print(
        f"   {'artifact':<26} {'KB':>6} {'drop':>7} | {'p50':>6} {'p99':>6} {'/s':>6} | {'p50':>6} {'p99':>6} {'peak/s':>7}"
    )
    for r in res["families"]:
        i, w = r["in_process"], r["http"]
        drop = "-" if r["accuracy_drop"] is None else f"{r['accuracy_drop']:+.4f}"
        print(
            f"   {r['artifact']:<26} {r['size_kb']:>6.1f} {drop:>7} | {i['p50_ms']:>6.3f} {i['p99_ms']:>6.3f} {i['per_s']:>6.0f} | "
            f"{w['p50_ms']:>6.2f} {w['p99_ms']:>6.2f} {w['peak_per_s']:>7.0f}"
        )
    if args.json:
        from model_checks.core.fileio import write_text

        write_text(args.json, json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
