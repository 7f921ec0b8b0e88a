"""Load-test an Open Inference Protocol endpoint open-loop (this service, Triton, KServe) on loopback.

example:
  model-checks loadtest http://127.0.0.1:8000/v2/models/digits_cnn_fp32/infer --rate 200 --duration 5 \
      --body-from artifacts/digits_cnn_fp32 --json
  # a base URL (http://127.0.0.1:8000) is completed with the artifact's model name
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_checks.core.argtypes import positive_number


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="an infer URL (…/v2/models/NAME/infer) or a base URL on loopback")
    p.add_argument(
        "--rate",
        type=positive_number(float, "requests/s"),
        required=True,
        metavar="R",
        help="open-loop arrival rate, requests/s",
    )
    p.add_argument(
        "--duration",
        type=positive_number(float, "seconds"),
        required=True,
        metavar="S",
        help="wall-time cap of the load phase, s",
    )
    p.add_argument(
        "--body-from",
        type=Path,
        required=True,
        metavar="ARTIFACT_DIR",
        help="request bodies from this artifact's samples",
    )
    p.add_argument(
        "--requests",
        type=positive_number(int, "requests"),
        default=None,
        metavar="N",
        help="request cap. Default: rate x duration",
    )
    p.add_argument(
        "--arrivals", choices=("constant", "poisson"), default="constant", help="arrival process. Default: constant"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of Poisson arrivals. Default: 0")
    p.add_argument(
        "--timeout",
        type=positive_number(float, "seconds"),
        default=5.0,
        metavar="S",
        help="per-request timeout. Default: 5",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table. Default: off")


def _progress(total: int):  # type: ignore[no-untyped-def]
    def show(sent: int, ok: int, errors: int) -> None:
        filled = int(30 * sent / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {sent}/{total} sent, {ok} ok, {errors} error(s)")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from model_checks.serving.check import request_bodies
    from model_checks.serving.load import Target, open_loop
    from model_checks.serving.net import split_url
    from model_checks.serving.service import open_artifact

    art = open_artifact(args.body_from)
    host, port, path = split_url(args.url)  # refuses anything but loopback before a request leaves
    url = args.url.rstrip("/")
    if not path.endswith("/infer"):
        url = f"{url}/v2/models/{art.manifest.model_name}/infer"  # type: ignore[union-attr]
    n = args.requests or max(1, int(args.rate * args.duration))
    result = open_loop(
        Target(url, request_bodies(art)),
        args.rate,
        n,
        args.duration,
        args.arrivals,
        args.seed,
        args.timeout,
        progress=None if args.json else _progress(n),
    )
    if args.json:
        print(json.dumps({"url": url, **result.as_dict()}))
    else:
        sys.stderr.write("\n")
        lat = result.latencies_ms
        rows = [
            ("target rate", f"{args.rate:g} req/s ({args.arrivals})"),
            ("achieved rate", f"{result.achieved_rate:.1f} req/s"),
            ("sent / ok / errors", f"{result.sent} / {result.ok} / {result.errors}"),
            ("stopped by", result.stopped_by),
            *((f"latency {k}", "-" if v is None else f"{v:.2f} ms") for k, v in lat.items()),
        ]
        print(f"loadtest {url}")
        for k, v in rows:
            print(f"  {k:<20} {v}")
        for e in result.error_samples:
            print(f"  error: {e}")
    return 1 if result.errors else 0
