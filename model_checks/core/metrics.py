"""Comparing a model's outputs with reference outputs, per output, never a false pass.

Everything is computed in float64. Shapes and dtypes must match exactly: nothing is broadcast and
fp16 is not silently compared with fp32. NaN or Inf on either side is a failure. A reference whose norm
is zero is compared by absolute L2 (a relative error would divide by zero and pass anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from model_checks.core.lazy import lazy
from model_checks.manifest.model import Limit

np = lazy("numpy")

WORST_SHOWN = 5


def l2(a: np.ndarray) -> float:
    """||a||_2 of a float64 array: the square root of numpy's own (pairwise) sum of its squares, not BLAS's dot, which
    is what np.linalg.norm computes. A multi-threaded BLAS (numpy's OpenBLAS) splits a dot of more than ~10,000 values
    across its threads, and those threads then spin waiting for more work on the core the gate's worker needs (row a
    of bench/overhead.py: the gate's CPU about 0.1 s less over 97 small models); the sum is also the same whatever
    the thread count. Squares below ~1e-308 underflow to 0 in both."""
    flat = a.ravel()
    return float(np.sqrt(np.add.reduce(flat * flat)))


def rel_l2(out: np.ndarray, ref: np.ndarray) -> float:
    """||out - ref||_2 / ||ref||_2; the absolute L2 norm of the difference when ||ref|| is 0."""
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return _rel_l2(o - r, l2(r))


def _rel_l2(diff: np.ndarray, norm: float) -> float:
    """rel_l2 of `diff` (out - ref, float64) against `norm` (||ref||_2)."""
    d = l2(diff)
    return d / norm if norm > 0 else d


def mae(out: np.ndarray, ref: np.ndarray) -> float:
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.mean(np.abs(o - r))) if o.size else 0.0


def max_abs(out: np.ndarray, ref: np.ndarray) -> float:
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(o - r))) if o.size else 0.0


def top1_agreement(out: np.ndarray, ref: np.ndarray) -> float:
    """Share of samples (rows of the leading axis) whose argmax over the last axis agrees."""
    o, r = np.asarray(out), np.asarray(ref)
    if o.ndim < 2:
        o, r = o.reshape(1, -1), r.reshape(1, -1)
    a = np.argmax(o.reshape(-1, o.shape[-1]), axis=-1)
    b = np.argmax(r.reshape(-1, r.shape[-1]), axis=-1)
    return float(np.mean(a == b)) if a.size else 1.0


def mismatch_fraction(out: np.ndarray, ref: np.ndarray) -> float:
    """Share of elements that differ at all (integer, bool and string outputs are exact or not)."""
    return float(np.mean(np.asarray(out) != np.asarray(ref))) if np.asarray(out).size else 0.0


EXACT_KINDS = "iubUSO"  # integers, bools, strings (and the objects ORT returns for them)
EXACT_DEFAULT = Limit(0.0, "default (model-checks): integer, bool and string outputs are exact")
FLOAT_METRICS = ("rel_l2", "mae", "max_abs", "top1_agreement")

METRIC_FUNCS = {
    "mismatch_fraction": mismatch_fraction,
    "rel_l2": rel_l2,
    "mae": mae,
    "max_abs": max_abs,
    "top1_agreement": top1_agreement,
}
HIGHER_IS_BETTER = {"top1_agreement"}


def _fmt(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else repr(v.item() if isinstance(v, np.generic) else v)


@dataclass(frozen=True)
class MetricRow:
    metric: str
    value: float
    limit: Limit | None

    @property
    def ok(self) -> bool:
        if self.limit is None:
            return True
        if self.metric in HIGHER_IS_BETTER:
            return self.value >= self.limit.value
        return self.value <= self.limit.value


@dataclass(frozen=True)
class OutputComparison:
    """One output compared: metric rows, or a structural problem that makes metrics meaningless."""

    name: str
    rows: tuple[MetricRow, ...] = ()
    problem: str | None = None
    # the elements that differ most, (index, value, reference value): worked out, and shown, only for an output that
    # fails (compare_output; the first that differ, for an exact one)
    worst: tuple[tuple[tuple[int, ...], float, float], ...] = ()
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and all(r.ok for r in self.rows)

    def value(self, metric: str) -> float | None:
        return next((r.value for r in self.rows if r.metric == metric), None)

    def render(self) -> list[str]:
        mark = "ok" if self.ok else "FAILED"
        lines = [f"output '{self.name}': {mark}"]
        if self.problem:
            return lines + [f"    {self.problem}"]
        lines.append(f"    {'metric':<16}{'value':>12}  {'limit':>10}  source")
        for r in self.rows:
            op = ">=" if r.metric in HIGHER_IS_BETTER else "<="
            lim = f"{op} {r.limit.value:.3g}" if r.limit else "-"
            flag = "" if r.ok else "   <-- exceeds" if r.metric not in HIGHER_IS_BETTER else "   <-- below"
            lines.append(
                f"    {r.metric:<16}{r.value:>12.4g}  {lim:>10}  {r.limit.source if r.limit else 'not gated'}{flag}"
            )
        if self.note:
            lines.append(f"    note: {self.note}")
        if self.worst and not self.ok:
            lines.append(
                "    worst elements (index: value vs reference):"
                if self.rows[0].metric != "mismatch_fraction"
                else "    first differing elements (index: value vs reference):"
            )
            lines += [f"      {list(idx)}: {_fmt(v)} vs {_fmt(rv)}" for idx, v, rv in self.worst]
        return lines


@dataclass(frozen=True)
class Comparison:
    """All outputs compared; truthy when every output holds."""

    outputs: tuple[OutputComparison, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)  # what explains a failure (a quantized tensor that clips)

    def __bool__(self) -> bool:
        return not self.problems and all(o.ok for o in self.outputs)

    def render(self) -> list[str]:
        lines = [f"  {p}" for p in (*self.problems, *self.notes)]
        for o in self.outputs:
            lines += ["  " + line for line in o.render()]
        return lines

    def worst(self, metric: str) -> float | None:
        vals = [v for o in self.outputs if (v := o.value(metric)) is not None]
        if not vals:
            return None
        return min(vals) if metric in HIGHER_IS_BETTER else max(vals)


def _finite_problem(a: np.ndarray, side: str) -> str | None:
    if a.dtype.kind not in "fc":
        return None
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        return f"{side} has {n_nan} NaN and {n_inf} Inf values (first at index {list(idx)}); a non-finite output never passes"
    return None


def _same_non_finite(out: np.ndarray, ref: np.ndarray, against: str = "the reference") -> str | None:
    """Both sides non-finite at exactly the same places, alike (NaN for NaN, the same infinity): the inputs reach
    outside what the model computes (a square root or a logarithm of a negative, say), as a test data set recorded
    from the original often does. Still a failure, said as such: agreeing there proves nothing of the model."""
    if out.dtype.kind not in "fc" or ref.dtype.kind not in "fc":
        return None
    bad = ~np.isfinite(out)
    if not bad.any() or not np.array_equal(bad, ~np.isfinite(ref)):
        return None
    o, r = out[bad], ref[bad]
    if not np.array_equal(np.isnan(o), np.isnan(r)) or not np.array_equal(o[~np.isnan(o)], r[~np.isnan(r)]):
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    n_nan = int(np.isnan(o).sum())
    return (
        f"the output and {against} both have {n_nan} NaN and {o.size - n_nan} Inf values, at the same places "
        f"(first at index {list(idx)}): the inputs reach outside what the model computes (a square root or a "
        "logarithm of a negative, say); a non-finite output never passes, so compare on inputs inside its domain"
    )


def compare_output(
    name: str, out: np.ndarray, ref: np.ndarray, limits: Mapping[str, Limit], against: str = "the reference"
) -> OutputComparison:
    """Compare one output with its reference under `limits` (metric -> Limit); `against` names what `ref` is in
    the messages (the batch check compares a batched run with the same sample run alone, not with a reference)."""
    out, ref = np.asarray(out), np.asarray(ref)
    if out.shape != ref.shape:
        return OutputComparison(
            name,
            problem=f"shape {list(out.shape)} differs from {against}'s {list(ref.shape)}; shapes must match exactly (nothing is broadcast)",
        )
    if out.dtype != ref.dtype:
        return OutputComparison(
            name,
            problem=f"dtype {out.dtype} differs from {against}'s {ref.dtype}; cast explicitly when packaging, or "
            f"declare outputs[].dtype: {out.dtype} in metadata.yaml to compare both in float32 or wider "
            "(fp16 is never compared with fp32 silently)",
        )
    if out.size == 0:
        return OutputComparison(
            name, problem=f"output is empty (shape {list(out.shape)}); an empty comparison proves nothing"
        )
    if (p := _same_non_finite(out, ref, against)) is not None:
        return OutputComparison(name, problem=p)
    for arr, side in ((out, "the output"), (ref, against)):
        if (p := _finite_problem(arr, side)) is not None:
            return OutputComparison(name, problem=p)
    if out.dtype.kind in EXACT_KINDS:
        return _compare_exact(name, out, ref, limits.get("mismatch_fraction") or EXACT_DEFAULT)
    if not any(m in limits for m in FLOAT_METRICS):
        return OutputComparison(name, problem="no tolerance applies to this output; equivalence would pass anything")
    # rel_l2, mae and max_abs (always reported) as rel_l2(), mae() and max_abs() compute them, from one float64 copy
    # of each side and one difference rather than one each
    o, r = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    diff = o - r
    gap = np.abs(diff)
    norm = l2(r)
    shared = {"rel_l2": _rel_l2(diff, norm), "mae": float(np.mean(gap)), "max_abs": float(gap.max())}
    rows = []
    for metric in FLOAT_METRICS:
        lim = limits.get(metric)
        if lim is not None or metric in shared:
            value = shared[metric] if metric in shared else METRIC_FUNCS[metric](out, ref)
            rows.append(MetricRow(metric, value, lim))
    note = None
    if norm == 0.0:
        note = "the reference is all zeros: rel_l2 is the absolute L2 norm of the difference"
    worst = () if all(row.ok for row in rows) else _worst(gap.ravel(), out, ref)
    return OutputComparison(name, tuple(rows), worst=worst, note=note)


def _worst(gap: np.ndarray, out: np.ndarray, ref: np.ndarray) -> tuple[tuple[tuple[int, ...], float, float], ...]:
    """The WORST_SHOWN elements of largest |out - ref| (`gap`, flat), largest first: (index, value, reference)."""
    k = min(WORST_SHOWN, gap.size)
    top = np.argpartition(-gap, k - 1)[:k]
    top = top[np.argsort(-gap[top], kind="stable")]
    return tuple(
        (tuple(int(i) for i in np.unravel_index(int(j), out.shape)), float(out.ravel()[j]), float(ref.ravel()[j]))
        for j in top
    )


def _compare_exact(name: str, out: np.ndarray, ref: np.ndarray, limit: Limit) -> OutputComparison:
    """Labels, ids, masks and strings: how many elements differ, against `mismatch_fraction` (0 by default);
    a float metric would let one wrong token id in 100,000 pass as a relative error of 1e-5."""
    differ = np.asarray(out != ref)
    count = int(differ.sum())
    row = MetricRow("mismatch_fraction", count / out.size, limit)
    where = np.argwhere(differ)[:WORST_SHOWN]
    shown = tuple((tuple(int(i) for i in idx), out[tuple(idx)], ref[tuple(idx)]) for idx in where)
    note = f"{count} of {out.size} {out.dtype} elements differ" if count else None
    return OutputComparison(name, (row,), worst=shown, note=note)


def compare_outputs(outs: Mapping[str, np.ndarray], refs: Mapping[str, np.ndarray], limits_for) -> Comparison:  # type: ignore[no-untyped-def]
    """Match outputs by name: missing and extra names are failures, never ignored."""
    problems = []
    missing = [n for n in refs if n not in outs]
    extra = [n for n in outs if n not in refs]
    if missing:
        problems.append(f"outputs missing from the model: {', '.join(missing)} (the reference has {', '.join(refs)})")
    if extra:
        problems.append(f"outputs the reference does not have: {', '.join(extra)}")
    compared = tuple(compare_output(n, outs[n], refs[n], limits_for(n)) for n in refs if n in outs)
    if not compared and not problems:
        problems.append("no output to compare")
    return Comparison(compared, tuple(problems))
