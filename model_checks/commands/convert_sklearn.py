"""Convert a fitted scikit-learn classifier to ONNX through skl2onnx, with or without ZipMap.

The model is read with joblib (a pickle: convert only models you made yourself). Labels and probabilities
are compared with scikit-learn's predict and predict_proba on --samples before anything is written.

example:
  model-checks convert-sklearn classifier.joblib --samples samples.npz --out model.onnx
  model-checks convert-sklearn classifier.joblib --samples samples.npz --no-zipmap --out model.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import existing_file, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        type=existing_file(".joblib", ".pkl", ".pickle"),
        metavar="MODEL",
        help="the fitted estimator, saved with joblib.dump",
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="where to write the ONNX model (required)")
    p.add_argument(
        "--samples",
        required=True,
        type=existing_file(".npz"),
        metavar="NPZ",
        help="rows of features to check the conversion on (one array, or one named 'input'; required)",
    )
    p.add_argument(
        "--no-zipmap",
        action="store_true",
        help="probabilities as a [batch, classes] tensor instead of a sequence of maps (default: ZipMap, as skl2onnx does)",
    )
    p.add_argument("--opset", type=positive_int, default=17, metavar="N", help="ONNX opset (default: 17)")


def run(args: argparse.Namespace) -> int:
    import joblib

    from model_checks.producers.loading import load_array
    from model_checks.producers.sklearn_convert import convert_sklearn

    model = joblib.load(args.model)
    samples = load_array(args.samples, "--samples")
    print(convert_sklearn(model, args.out, samples, zipmap=not args.no_zipmap, opset=args.opset))
    return 0
