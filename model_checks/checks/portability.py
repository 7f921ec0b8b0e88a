"""`portability`: an int8 ONNX model holds its tolerance on every CPU kernel family it must run on
(`limits.portable_to`, default all), not only on the machine the gate runs on.

x86-64 CPUs without VNNI saturate U8S8/S8S8 pair sums at 16 bits (see `backends/onnx/int8`). On any machine the
check predicts it: the kernels whose weights can saturate are emulated in numpy on the artifact's own cases, and
the simulated outputs are compared like equivalence does. On such a CPU it also measures it: the model runs
again with `session.x64quantprecision=1` (onnxruntime's U8U8 path, no saturation), and both are reported.

It fails where the verdict depends on the CPU: a case within the tolerance without saturation and outside it with.
A model outside its tolerance without saturation too fails on every CPU alike; that is not judged here (skipped,
with both figures), and saturation is not blamed for it."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.machine import FAMILIES, Machine, this_machine
from model_checks.core.metrics import Comparison, compare_outputs
from model_checks.core.results import CheckResult
from model_checks.safety.text import printable

NAME = "portability"
INT_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "QGemm",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
    }
)
U8U8_CONFIG = {"session.x64quantprecision": "1"}
FIX = (
    "quantize the weights to 7 bits (onnxruntime.quantization: reduce_range=True, which its guide asks for with "
    "per_channel on x86), or use u8 weights (U8U8: weight_type=QUInt8), or deploy with the session option "
    "session.x64quantprecision=1 (onnxruntime's U8U8 path, slower); or narrow limits.portable_to if the model never "
    "runs on x86 without VNNI"
)
SHOWN = 6


def _families(ctx: CheckContext) -> tuple[tuple[str, ...], str]:
    declared = ctx.manifest.limits.portable_to
    if declared is None:
        return FAMILIES, "default: every kernel family"
    return declared, f"limits.portable_to from {ctx.manifest.source_of('limits.portable_to')}"


def _expected(ctx: CheckContext, case, exact: dict) -> dict:  # type: ignore[no-untyped-def]
    """What a case is compared with: its recorded outputs, the reference model's, else the model's unsaturated ones."""
    if case.outputs is not None:
        return case.outputs
    if ctx.reference_kind == "model":
        return ctx.reference_outputs(case.inputs)
    return exact


def _against(ctx: CheckContext) -> str:
    ref = ctx.manifest.get("reference.path")
    return f"its reference {printable(str(ref))}" if ref else "its own unsaturated outputs (no reference declared)"


def _worst(comparisons: list[Comparison]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric in ("rel_l2", "top1_agreement"):
        vals = [v for c in comparisons if (v := c.worst(metric)) is not None]
        out[metric] = (min(vals) if metric == "top1_agreement" else max(vals)) if vals else None
    return out


def _figures(w: dict[str, float | None]) -> str:
    parts = [
        f"rel_l2 {w['rel_l2']:.4g}" if w.get("rel_l2") is not None else "",
        f"top-1 agreement {w['top1_agreement']:.3f}" if w.get("top1_agreement") is not None else "",
    ]
    return ", ".join(p for p in parts if p) or "no float outputs"


def _kernels_text(kernels: list[dict], saturated: dict[str, int] | None = None) -> str:
    shown = []
    for k in kernels[:SHOWN]:
        sat = f", {saturated[k['name']]} saturated" if saturated is not None and k["name"] in saturated else ""
        lo, hi = k["weight_range"]
        shown.append(f"{printable(k['name'])} ({k['op']} {k['kind']}, weights [{lo}, {hi}]{sat})")
    more = f" and {len(kernels) - SHOWN} more" if len(kernels) > SHOWN else ""
    return "; ".join(shown) + more


def _moot(without: list[Comparison], what: str) -> str:
    """Why a model outside its tolerance whatever the CPU does is not judged here: `without`, its unsaturated runs."""
    failing = [c for c in without if not c]
    return (
        f"without saturation ({what}) the model is already outside its tolerance on {len(failing)} of {len(without)} "
        f"case(s), {_figures(_worst(without))}, on every CPU kernel family alike: the verdict does not depend on the "
        "CPU, and saturation is not what fails it"
    )


def _flips(saturated: list[Comparison], without: list[Comparison]) -> bool:
    """Whether some case is within the tolerance without saturation and outside it with: a verdict the CPU decides."""
    return any(w and not s for s, w in zip(saturated, without, strict=True))


def predicted(ctx: CheckContext, risky: list[dict]) -> tuple[list[str], list[str], dict, str | None]:
    """Problems, notes and figures of the emulated run on x86 without VNNI, and why it is moot (or None)."""
    from model_checks.backends.onnx import int8

    path, tol = ctx.model_path, ctx.manifest.tolerance.for_output
    sims, exacts, saturated, pairs, propagated, skipped = [], [], {}, 0, True, {}
    for case in ctx.cases():
        sim = ctx.pool.run_isolated("onnx", path, int8.simulate, path, case.inputs, [k["name"] for k in risky])
        expected = _expected(ctx, case, sim.exact)
        sims.append(compare_outputs(sim.outputs, expected, tol))
        exacts.append(compare_outputs(sim.exact, expected, tol))
        for name, n in sim.saturated.items():
            saturated[name] = saturated.get(name, 0) + n
        pairs += sum(sim.pairs.values())
        propagated, skipped = propagated and sim.propagated, {**skipped, **sim.skipped}
    w_sim, w_exact = _worst(sims), _worst(exacts)
    hit = [k for k in risky if saturated.get(k["name"])]
    figures = {f"x86_avx2_simulated_{m}": v for m, v in w_sim.items()} | {
        "saturated_pair_sums": sum(saturated.values())
    }
    where = f"on the {len(sims)} case(s) equivalence runs, against {_against(ctx)}"
    if not propagated:
        where += f" ({len(risky)} kernels, each emulated on unsaturated inputs in one pass: over {int8.PROPAGATE_MAX})"
    if skipped:
        where += f"; not emulated: {'; '.join(f'{printable(n)} ({why})' for n, why in sorted(skipped.items()))}"
    if all(sims):
        note = (
            f"  x86-avx2 (predicted, no VNNI): {_figures(w_sim)} {where}, within the tolerance; "
            f"{sum(saturated.values())} pair sum(s) saturated in {len(hit)} of {len(risky)} kernel(s) that can saturate"
        )
        return [], [note], figures, None
    if not _flips(sims, exacts):
        note = (
            f"  x86-avx2 (predicted, no VNNI): {_figures(w_sim)} {where}; {sum(saturated.values())} pair sum(s) "
            f"saturated in {len(hit)} of {len(risky)} kernel(s) that can saturate"
        )
        return [], [note], figures, _moot(exacts, "the exact integer kernels")
    problems = [
        "on an x86-64 CPU without VNNI (AVX2, or AVX-512 without VNNI) this model's int8 kernels saturate: "
        f"the emulated "
        f"VPMADDUBSW pair sums (u8 x s8, clipped to int16) give {_figures(w_sim)} {where}, outside the tolerance "
        f"(without saturation: {_figures(w_exact)}). {sum(saturated.values())} of {pairs} pair sums saturated, in: "
        f"{_kernels_text(hit or risky, saturated)}. Fix: {FIX}"
    ]
    first = next(c for c, w in zip(sims, exacts, strict=True) if w and not c)
    return problems, ["  predicted on x86-avx2, the first case saturation fails:", *first.render()], figures, None


def measured(ctx: CheckContext, machine: Machine, risky: list[dict]) -> tuple[list[str], list[str], dict, str | None]:
    """On this x86 CPU without VNNI: the default kernels and onnxruntime's U8U8 path, each against what is expected;
    and why it is moot (or None)."""
    from model_checks.backends.onnx import int8

    path, tol = ctx.model_path, ctx.manifest.tolerance.for_output
    default, u8u8, between = [], [], []
    for case in ctx.cases():
        got = ctx.runner().infer(case.inputs)
        alt = ctx.pool.run_isolated("onnx", path, int8.run_with_config, path, case.inputs, U8U8_CONFIG)
        expected = _expected(ctx, case, alt)
        default.append(compare_outputs(got, expected, tol))
        u8u8.append(compare_outputs(alt, expected, tol))
        between.append(compare_outputs(got, alt, tol))
    w_def, w_alt = _worst(default), _worst(u8u8)
    figures = {
        **{f"measured_{m}": v for m, v in w_def.items()},
        **{f"measured_x64quantprecision_{m}": v for m, v in w_alt.items()},
    }
    line = (
        f"  measured here ({machine.cpu}, {' '.join(machine.isa)}): default kernels {_figures(w_def)}; with "
        f"session.x64quantprecision=1 {_figures(w_alt)} (against {_against(ctx)})"
    )
    if all(between) or all(default):
        return [], [line], figures, None
    if not _flips(default, u8u8):
        return [], [line], figures, _moot(u8u8, "session.x64quantprecision=1")
    names = (
        _kernels_text(risky)
        if risky
        else "no kernel with a weight pair that can leave int16 (same-signed pair summing past 128 in magnitude) (check the activations' range)"
    )
    return (
        [
            f"this CPU's int8 kernels saturate: {printable(machine.cpu)} ({' '.join(machine.isa) or 'no VNNI'}) gives "
            f"{_figures(w_def)} with its default kernels and {_figures(w_alt)} with session.x64quantprecision=1, which "
            f"differ beyond the tolerance. Kernels that can saturate: {names}. Fix: {FIX}"
        ],
        [line],
        figures,
        None,
    )


INT8_PRECISIONS = ("int8", "uint8", "mixed")  # the declared precisions test_portability is collected for


class PortabilityNotChecked(UserWarning):
    """An int8 ONNX model whose manifest declares no precision: test_portability is not collected for it (collection
    reads manifests, not models), so its verdicts may hold on this machine's int8 kernels only. Reported by the
    metadata check (pytest lists it under warnings), not failed: the manifest claims nothing false."""


def unchecked_int8(fmt: str, declared: object, precision: str, why: str, where: str) -> str | None:
    """The sentence for an int8 ONNX model whose manifest (`where`) declares no precision, else None."""
    if fmt != "onnx" or declared is not None or precision not in INT8_PRECISIONS:
        return None
    return (
        f"the model is {precision} ({why}) but {where} declares no precision, so its int8 portability across CPU "
        "kernel families (x86 with and without VNNI, ARM) is not checked and its equivalence verdict may hold on "
        f"this machine only; declare precision: {precision} to have test_portability check it"
    )


def run(ctx: CheckContext) -> CheckResult:
    if ctx.fmt != "onnx":
        return CheckResult.skip(
            NAME, f"int8 portability is checked on ONNX models (onnxruntime's CPU kernels); this is {ctx.fmt}"
        )
    if not INT_OPS & set(ctx.facts().ops):
        return CheckResult.skip(NAME, f"{ctx.artifact.id} has no integer Conv, MatMul or Gemm kernels")
    from model_checks.backends.onnx import int8

    kernels = ctx.pool.run_isolated("onnx", ctx.model_path, int8.kernel_summary, ctx.model_path)
    if not kernels:
        others = sorted(set(int8.NOT_EMULATED) & set(ctx.facts().ops))
        found = (
            f" (its {', '.join(others)} quantize their activation inside the kernel: not emulated)" if others else ""
        )
        return CheckResult.skip(
            NAME,
            f"{ctx.artifact.id} has quantization nodes but no integer Conv, MatMul or Gemm with int8 weights{found}",
        )
    families, source = _families(ctx)
    machine = this_machine()
    risky = [k for k in kernels if k["can_saturate"]]
    problems: list[str] = []
    notes = [f"  on {machine.describe()}; must hold on {', '.join(families)} ({source})"]
    figures: dict = {"int8_kernels": len(kernels), "saturable_kernels": len(risky), **machine.properties()}
    moot: list[str] = []
    if "x86-avx2" in families and risky:
        p, n, f, m = predicted(ctx, risky)
        problems, notes, figures, moot = problems + p, notes + n, figures | f, moot + ([m] if m else [])
    elif "x86-avx2" in families:
        notes.append(
            f"  x86-avx2: none of the {len(kernels)} int8 kernel(s) can saturate "
            "(u8 weights, or s8 weights whose pairs stay in int16)"
        )
    if machine.family == "x86-avx2":
        p, n, f, m = measured(ctx, machine, risky)
        problems, notes, figures, moot = problems + p, notes + n, figures | f, moot + ([m] if m else [])
    subject = f"{ctx.artifact.id} ({len(kernels)} int8 kernel(s), {len(risky)} that can saturate a 16-bit pair sum)"
    if moot and not problems:
        return CheckResult.skip(NAME, f"not judged for {subject}: {moot[0]}; {'; '.join(n.strip() for n in notes[1:])}")
    return CheckResult.from_problems(
        NAME, subject, problems, passed=f"holds on {', '.join(families)}", figures=figures, notes=notes
    )


# ONNX models that declare integer precision (test_metadata holds the graph to it); its verdict depends on the
# machine's integer kernels, so the machine travels with it
CHECK = Check(
    NAME,
    run,
    applies=lambda m: m.format == "onnx" and m.get("precision") in INT8_PRECISIONS,
    machine_dependent=True,
)
