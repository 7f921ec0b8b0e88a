"""`equivalence`: the artifact's outputs against its reference's, per output, under the tolerances."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from model_checks.checks.context import CheckContext
from model_checks.core.metrics import Comparison, OutputComparison, compare_outputs
from model_checks.core.results import CheckResult

NAME = "equivalence"


def comparisons(ctx: CheckContext) -> list[tuple[str, Comparison]]:
    """Each case compared: (label, Comparison)."""
    runner = ctx.runner()
    out = []
    for case in ctx.cases():
        got = runner.infer(case.inputs)
        expected = case.outputs if case.outputs is not None else ctx.reference_outputs(case.inputs)
        got, expected, widened = widened_floats(ctx, got, expected)
        c = compare_outputs(got, expected, ctx.manifest.tolerance.for_output)
        if widened:  # said under the output it concerns (the case's label is how localisation finds the case again)
            outs = tuple(replace(o, note="; ".join(filter(None, (widened[o.name], o.note)))) if o.name in widened else o
                         for o in c.outputs)
            c = replace(c, outputs=outs)
        out.append((case.label, c))
    return out


def widened_floats(ctx: CheckContext, got: dict, expected: dict) -> tuple[dict, dict, dict[str, str]]:
    """Float outputs whose dtype differs from the reference's only where the manifest declares it
    (`outputs[].dtype: float16`), both sides cast to the wider of the two and at least float32; an
    undeclared difference is left for the comparison to refuse (fp16 is never compared with fp32 silently)."""
    declared = {t.name: t.dtype for t in ctx.manifest.outputs or ()}
    got, expected, notes = dict(got), dict(expected), {}
    for name, a in got.items():
        b = expected.get(name)
        if b is None or a.dtype == b.dtype or a.dtype.kind != "f" or b.dtype.kind != "f":
            continue
        if declared.get(name) != str(a.dtype):
            continue
        wide = np.result_type(a.dtype, b.dtype, np.float32)
        got[name], expected[name] = a.astype(wide), b.astype(wide)
        notes[name] = f"compared in {wide} (declared {a.dtype} in outputs[].dtype, the reference gives {b.dtype})"
    return got, expected, notes


def worst(results: list[tuple[str, Comparison]], metric: str) -> float | None:
    vals = [v for _, c in results if (v := c.worst(metric)) is not None]
    if not vals:
        return None
    return min(vals) if metric == "top1_agreement" else max(vals)


def run(ctx: CheckContext) -> CheckResult:
    if ctx.reference_path is None:
        return CheckResult.skip(NAME, f"no reference declared in {ctx.where} (reference.path)")
    start = time.monotonic()
    results = comparisons(ctx)
    check_s = time.monotonic() - start  # localisation's default time cap is a multiple of it
    figures = {m: worst(results, m) for m in ("rel_l2", "mae", "max_abs", "top1_agreement")}
    ref = ctx.manifest.get("reference.path")
    failed = [(label, c) for label, c in results if not c]
    if failed:
        lines = []
        for label, c in failed:
            lines.append(f"  case: {label}")
            lines += c.render()
        lines.append(f"  limits come from the 'tolerance' of {ctx.where} or policy.yaml; raise them there only if the difference is expected")
        from model_checks.localize.gate import lines as localisation

        extra, found = localisation(ctx, failed, check_s)
        lines += extra
        figures.update(found)
        n_out = sum(1 for _, c in failed for o in c.outputs if not o.ok) + sum(len(c.problems) for _, c in failed)
        return CheckResult(NAME, False, f"{NAME}: {ctx.artifact.id} differs from its reference {ref} ({n_out} failure(s) in {len(failed)} of {len(results)} case(s))", tuple(lines), figures=figures)
    summary = ", ".join(f"{k} {v:.3g}" for k, v in figures.items() if v is not None)
    return CheckResult(NAME, True, f"{NAME}: {ctx.artifact.id} matches {ref} over {len(results)} case(s): worst {summary}", figures=figures)


__all__ = ["run", "comparisons", "OutputComparison"]
