"""`equivalence`: the artifact's outputs against its reference's, per output, under the tolerances."""

from __future__ import annotations

import time
from dataclasses import replace

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check, Figure
from model_checks.core import runtimes
from model_checks.core.errors import ModelChecksError, WorkerBrokeError
from model_checks.core.lazy import lazy
from model_checks.core.metrics import Comparison, compare_outputs
from model_checks.core.quantio import io_note, saturation_lines
from model_checks.core.results import CheckResult
from model_checks.manifest.model import Limit

np = lazy("numpy")

NAME = "equivalence"
METRICS = ("rel_l2", "mae", "max_abs", "top1_agreement")
# Two runtimes compared with each other are reported, not gated: the gate is each against the reference.
UNGATED = {"top1_agreement": Limit(0.0, "not gated"), "mismatch_fraction": Limit(1.0, "not gated")}


def comparisons(ctx: CheckContext, outputs: list[dict] | None = None) -> list[tuple[str, Comparison]]:
    """Each case compared: (label, Comparison); `outputs`, one per case, when another runtime computed them."""
    specs = ctx.runner()  # the artifact's interface (a quantized input's range is read off it)
    runner = specs if outputs is None else None
    cases = ctx.cases()
    if runner is not None:
        try:  # every case in one round trip to the worker
            outputs = runner.infer_many([case.inputs for case in cases])
        except WorkerBrokeError:
            raise  # a crash, hang or exhaustion is the failure (the first case would have met it just the same)
        except ModelChecksError:
            outputs = None  # case by case below, so the failure reported is the one met first, as ever
    expected_of = _reference_outputs(ctx, cases)
    out = []
    for i, case in enumerate(cases):
        got = outputs[i] if outputs is not None else runner.infer(case.inputs)  # type: ignore[union-attr]
        expected = case.outputs if case.outputs is not None else expected_of.get(i)
        if expected is None:
            expected = ctx.reference_outputs(case.inputs)
        got, expected, widened = widened_floats(ctx, got, expected)
        c = compare_outputs(got, expected, ctx.manifest.tolerance.for_output)
        if widened:  # said under the output it concerns (the case's label is how localisation finds the case again)
            outs = tuple(
                replace(o, note="; ".join(filter(None, (widened[o.name], o.note)))) if o.name in widened else o
                for o in c.outputs
            )
            c = replace(c, outputs=outs)
        if not c and (clipped := saturation_lines(case.inputs, expected, specs.inputs, specs.outputs)):
            c = replace(c, notes=tuple(clipped))
        out.append((case.label, c))
    return out


def _reference_outputs(ctx: CheckContext, cases: list) -> dict[int, dict]:
    """The reference's outputs for the cases that record none, by case, in one round trip to its worker (the batch
    and "sample 0 alone" are two); empty where that failed short of breaking the worker: case by case then, so
    the failure reported is the one met first."""
    todo = [i for i, case in enumerate(cases) if case.outputs is None]
    if len(todo) < 2:
        return {}
    try:
        return dict(zip(todo, ctx.reference_outputs_many([cases[i].inputs for i in todo]), strict=True))
    except WorkerBrokeError:
        raise
    except ModelChecksError:
        return {}


def how_run(ctx: CheckContext) -> str:
    """How the artifact ran, where it matters to the figures: quantized I/O, the runtime's own choices."""
    runner = ctx.runner()
    return "; ".join(n for n in (runner.description, io_note(runner.inputs, runner.outputs)) if n)


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
    if ctx.runtime not in (None, runtimes.DEFAULT):
        return on_runtime(ctx, ctx.runtime)
    if ctx.reference_path is None:
        return CheckResult.skip(NAME, f"no reference declared in {ctx.where} (reference.path)")
    start = time.monotonic()
    results = comparisons(ctx)
    return verdict(
        ctx, results, check_s=time.monotonic() - start
    )  # localisation's default time cap is a multiple of it


def verdict(
    ctx: CheckContext,
    results: list[tuple[str, Comparison]],
    runtime: str = "",
    ran: str = "",
    notes: list[str] | None = None,
    extra_figures: dict | None = None,
    ref: str | None = None,
    check_s: float = 0.0,
) -> CheckResult:
    """The check's result from its comparisons; `runtime` and `ran` (what ran it, with its settings) name an item of
    `runtimes:` in the headline and each case line; `check_s`: how long the comparisons took."""
    figures = {m: worst(results, m) for m in METRICS}
    figures.update(extra_figures or {})
    ref = ref or ctx.manifest.get("reference.path")
    on = f" on {runtime}" if runtime else ""
    failed = [(label, c) for label, c in results if not c]
    if failed:
        lines = [f"  ran as: {how}"] if not runtime and (how := how_run(ctx)) else []
        for label, c in failed:
            lines.append(f"  case: {label}" + (f" (ran on {ran})" if ran else ""))
            lines += c.render()
        lines.append(
            f"  limits come from the 'tolerance' of {ctx.where} or policy.yaml; raise them there only if the difference is expected"
        )
        if runtime:
            lines.append(
                f"  or, if {runtime} is not a runtime this artifact ships to, leave it out of 'runtimes' in "
                f"{ctx.where} (with a comment that says why)"
            )
        else:
            from model_checks.localize.gate import lines as localisation

            extra, found = localisation(ctx, failed, check_s)
            lines += extra
            figures.update(found)
        lines += notes or []
        n_out = sum(1 for _, c in failed for o in c.outputs if not o.ok) + sum(len(c.problems) for _, c in failed)
        head = (
            f"{NAME}: {ctx.artifact.id}{on} differs from its reference {ref} "
            f"({n_out} failure(s) in {len(failed)} of {len(results)} case(s))"
        )
        return CheckResult(NAME, False, head, tuple(lines), figures=figures)
    summary = ", ".join(f"{k} {v:.3g}" for k, v in figures.items() if v is not None and k in METRICS)
    how = f" ({how})" if (how := how_run(ctx)) and not runtime else ""
    return CheckResult(
        NAME,
        True,
        f"{NAME}: {ctx.artifact.id}{on} matches {ref} over {len(results)} case(s): worst {summary}{how}",
        tuple(notes or ()),
        figures=figures,
    )


def on_runtime(ctx: CheckContext, runtime: str) -> CheckResult:
    """Equivalence with the model run on another runtime: the same reference, cases and tolerance as on onnxruntime,
    and a line comparing the two runtimes' outputs directly. A runtime that cannot open the model fails this item
    only: the artifact's other checks still run on onnxruntime."""
    try:
        return _on_runtime(ctx, runtime)
    except ModelChecksError as e:
        return CheckResult(
            NAME,
            False,
            f"{NAME}: {ctx.artifact.id} on {runtime}: {e.what}",
            (
                *(f"  {line}" for line in str(e).splitlines()),
                f"  if {runtime} is not a runtime this artifact ships to, leave it out of 'runtimes' in "
                f"{ctx.where} (with a comment that says why)",
            ),
            figures={"runtime": runtime},
        )


def _on_runtime(ctx: CheckContext, runtime: str) -> CheckResult:
    why = runtimes.unavailable(runtime)
    if why:
        skipped = CheckResult.skip(NAME, why)
        return CheckResult(NAME, True, skipped.headline, skipped=why, figures={"runtime": runtime})
    rt = runtimes.RUNTIMES[runtime]
    cases = ctx.cases()
    if rt.provider is not None:
        ran, outputs = ctx.pool.run_isolated(
            rt.backend,
            ctx.model_path,
            runtimes.provider_outputs,
            ctx.model_path,
            ctx.artifact.root,
            rt.provider,
            [c.inputs for c in cases],
        )
    else:
        runner = ctx.pool.runner(ctx.model_path, rt.backend, ctx.artifact.root)
        ran, outputs = runner.description or runtime, [runner.infer(c.inputs) for c in cases]
    base = ctx.runner()
    base_outputs = [base.infer(c.inputs) for c in cases]
    ref = None
    if ctx.reference_path is None:  # nothing to compare with but the runtime the artifact was made on
        ref = "onnxruntime's outputs (no reference.path: the same model on onnxruntime is the reference)"
        tol = ctx.manifest.tolerance.for_output
        results = [
            (c.label, compare_outputs(out, b, tol)) for c, out, b in zip(cases, outputs, base_outputs, strict=True)
        ]
    else:
        results = comparisons(ctx, outputs)
    direct = [compare_outputs(out, b, lambda name: UNGATED) for out, b in zip(outputs, base_outputs, strict=True)]
    between = {
        m: worst([("", c) for c in direct], m) for m in ("rel_l2", "max_abs", "top1_agreement", "mismatch_fraction")
    }
    said = ", ".join(f"{k} {v:.3g}" for k, v in between.items() if v is not None) or "nothing comparable"
    note = f"  {runtime} against onnxruntime, output by output over {len(cases)} case(s): worst {said}"
    # "runtime" routes these figures to the runtime's own cell in the reports (never over onnxruntime's)
    figures = {"runtime": runtime, "runtime_ran": ran, **{f"vs_onnxruntime_{k}": v for k, v in between.items()}}
    return verdict(ctx, results, runtime, ran, [note], figures, ref)


def cell(status: str, figures: dict) -> str:
    """Its summary cell: the status; on another runtime (`runtimes:`), with that runtime's worst rel_l2 against the
    reference (onnxruntime's is the figure column)."""
    rel_l2 = figures.get("rel_l2")
    return f"{status} ({rel_l2:.3g})" if figures.get("runtime") and isinstance(rel_l2, float) else status


# One item on the format's own runtime, and one per other runtime the manifest (or policy.yaml) declares for an ONNX
# file, `test_equivalence[<id>-openvino]`, under the same reference, cases and tolerance.
CHECK = Check(
    NAME,
    run,
    variants=lambda m: [None, *runtimes.declared(m)[1:]],
    cell=cell,
    figures=(Figure("worst rel_l2", "rel_l2"), Figure("worst MAE", "mae")),
)
