"""`limits`: opset range, size, size against the reference, allowed ops, dynamic axes really dynamic."""

from __future__ import annotations

import numpy as np

from model_checks.checks.context import CheckContext
from model_checks.core.errors import WorkerBrokeError
from model_checks.core.inputs import OTHER_DYNAMIC_DIM, generate
from model_checks.core.metrics import compare_output
from model_checks.core.results import CheckResult

NAME = "limits"
DYNAMIC_SIZES = (1, 3)


def _src(ctx: CheckContext, key: str) -> str:
    return f"limits.{key} from {ctx.manifest.source_of(f'limits.{key}')}"


MAX_SAMPLES = 64  # rows of the shipped samples run together and each alone


def _axis_feeds(ctx: CheckContext, specs: list, axis: str, holders: list) -> tuple[dict, str]:
    """Feeds with `axis` at its larger size, and where they come from: the artifact's samples (valid ids,
    real value statistics, which is where batch-dependent quantization shows), else generated inputs."""
    samples = ctx.sample_feeds()
    if samples is None:
        return generate(specs, batch=1, seed=7, sizes={axis: max(DYNAMIC_SIZES)}), "generated inputs"
    feeds = dict(samples)
    for s in holders:
        k = list(s.shape).index(axis)
        if k == 0:
            feeds[s.name] = feeds[s.name][:MAX_SAMPLES]
    return feeds, f"the samples ({ctx.manifest.get('samples')})"


def _shorter(feeds: dict, holders: list, axis: str) -> dict:
    """The same feeds with a non-leading `axis` cut to about half (a prefix of a token sequence is valid)."""
    out = dict(feeds)
    for s in holders:
        k = list(s.shape).index(axis)
        size = out[s.name].shape[k]
        out[s.name] = np.take(out[s.name], np.arange(max(1, size // 2) if size > 1 else 1), axis=k)
    return out


def _infer(ctx: CheckContext, feeds: dict, axis: str, size: int, source: str) -> tuple[dict | None, list[str]]:
    try:
        return ctx.runner().infer(feeds), []
    except WorkerBrokeError:
        raise  # the runtime crashed, starved or hung: that is the failure, not the axis
    except Exception as e:
        return None, [f"dynamic_axes: '{axis}' of size {size} is refused by the model on {source}: {e}"]


def dynamic_axis_problems(ctx: CheckContext, axis: str) -> list[str]:
    """Run with two sizes of the named dim; along a leading dim, each sample's output in the batch must
    equal its output run alone (a model whose answer depends on its batch-mates is not batch-dynamic)."""
    specs = ctx.interface()
    holders = [s for s in specs if s.shape and axis in s.shape]
    if not holders:
        names = sorted({d for s in specs for d in (s.shape or ()) if isinstance(d, str)})
        return [f"dynamic_axes: '{axis}' is no dimension of any input (named dims: {', '.join(names) or 'none'}) [{_src(ctx, 'dynamic_axes')}]"]
    feeds, source = _axis_feeds(ctx, specs, axis, holders)
    first = holders[0]
    n = feeds[first.name].shape[list(first.shape).index(axis)]
    together, problems = _infer(ctx, feeds, axis, n, source)
    if together is None:
        return problems
    if not all(s.shape and s.shape[0] == axis for s in holders):
        short = _shorter(feeds, holders, axis)
        return _infer(ctx, short, axis, short[first.name].shape[list(first.shape).index(axis)], source)[1]
    differ: dict[str, list[tuple[int, str]]] = {}
    flips: dict[str, list[int]] = {}
    for i in range(n):
        alone_feeds = {k: (v[i : i + 1] if any(s.name == k for s in holders) else v) for k, v in feeds.items()}
        alone, problems = _infer(ctx, alone_feeds, axis, 1, source)
        if alone is None:
            return problems
        for name, full in together.items():
            if full.ndim == 0 or full.shape[0] != n:
                continue
            c = compare_output(name, full[i : i + 1], alone[name], ctx.manifest.tolerance.for_output(name))
            if not c.ok:
                detail = c.problem or "; ".join(f"{r.metric} {r.value:.3g} vs {r.limit.value:.3g}" for r in c.rows if not r.ok and r.limit)
                differ.setdefault(name, []).append((i, detail))
                if full.dtype.kind == "f" and full.ndim >= 2 and full.shape[-1] > 1 and np.argmax(full[i].reshape(-1, full.shape[-1]), -1).tolist() != np.argmax(alone[name][0].reshape(-1, full.shape[-1]), -1).tolist():
                    flips.setdefault(name, []).append(i)
    for name, rows in differ.items():
        i, detail = rows[0]
        which = ", ".join(str(j) for j, _ in rows[:20]) + (", ..." if len(rows) > 20 else "")
        flipped = flips.get(name, [])
        flip_text = f"; top-1 flips for sample(s) {', '.join(map(str, flipped[:20]))}" if flipped else "; no top-1 flips"
        problems.append(
            f"dynamic_axes: sample {i} of a '{axis}'={n} run differs from the same sample run alone in output '{name}': {detail} "
            f"({len(rows)} of {n} samples of {source} differ: {which}{flip_text}). The output depends on the batch-mates "
            f"(dynamic quantization computes one scale per batch); limits from 'tolerance' [{_src(ctx, 'dynamic_axes')}]"
        )
    return problems


def run(ctx: CheckContext) -> CheckResult:
    limits = ctx.manifest.limits
    gated = [k for k in limits.declared if k not in ("max_accuracy_drop", "portable_to")]  # test_accuracy, test_portability gate those
    if not gated:
        return CheckResult.skip(NAME, f"no limits declared in {ctx.where} or policy.yaml")
    facts = ctx.facts()
    problems: list[str] = []
    figures: dict = {"size_mb": facts.size_bytes / 1e6}
    if "opset" in gated:
        lo, hi = limits.opset_min, limits.opset_max
        if facts.opset is None:
            problems.append(f"opset: a {facts.format} model has no ONNX opset to limit [{_src(ctx, 'opset')}]")
        elif (lo is not None and facts.opset < lo) or (hi is not None and facts.opset > hi):
            problems.append(f"opset: the model imports opset {facts.opset}, outside [{lo if lo is not None else '-'}, {hi if hi is not None else '-'}] [{_src(ctx, 'opset')}]")
    if limits.max_size_mb is not None:
        mb = facts.size_bytes / 1e6
        if mb > limits.max_size_mb.value:
            problems.append(f"max_size_mb: the model is {mb:.3f} MB, over {limits.max_size_mb.value:g} MB [{_src(ctx, 'max_size_mb')}]")
    if limits.max_size_ratio is not None:
        if ctx.reference_kind != "model":
            problems.append(f"max_size_ratio: needs a model as reference.path to compare sizes with [{_src(ctx, 'max_size_ratio')}]")
        else:
            ref_size = ctx.reference_facts().size_bytes
            ratio = facts.size_bytes / ref_size
            figures["size_ratio"] = ratio
            if ratio > limits.max_size_ratio.value:
                problems.append(f"max_size_ratio: the model is {ratio:.3f} times its reference's size ({facts.size_bytes} vs {ref_size} bytes), "
                                f"over {limits.max_size_ratio.value:g} [{_src(ctx, 'max_size_ratio')}]")
    if limits.allowed_ops is not None:
        allowed = set(limits.allowed_ops)
        extra = {op: n for op, n in sorted(facts.ops.items()) if op not in allowed}
        if extra:
            problems.append(f"allowed_ops: the model uses ops outside the list: {', '.join(f'{op} (x{n})' for op, n in extra.items())} [{_src(ctx, 'allowed_ops')}]")
    for axis in limits.dynamic_axes:
        problems += dynamic_axis_problems(ctx, axis)
    return CheckResult.from_problems(NAME, ctx.artifact.id, problems, passed=f"{', '.join(gated)} hold", figures=figures)


__all__ = ["run", "OTHER_DYNAMIC_DIM", "np"]
