"""`limits`: opset range, size, size against the reference, allowed ops, dynamic axes really dynamic."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core import batch as batching
from model_checks.core.errors import InputGenerationError, WorkerBrokeError
from model_checks.core.inputs import generate, merge_interface
from model_checks.core.lazy import lazy
from model_checks.core.metrics import compare_output
from model_checks.core.results import CheckResult

np = lazy("numpy")

NAME = "limits"
DYNAMIC_SIZES = (1, 3)


def _src(ctx: CheckContext, key: str) -> str:
    return f"limits.{key} from {ctx.manifest.source_of(f'limits.{key}')}"


MAX_SAMPLES = 64  # rows of the shipped samples run together and each alone
PROOF_BATCH = max(DYNAMIC_SIZES)  # a single sample is repeated to this many rows; generated batches have this many
QUANTIZED = ("int8", "uint8")


def _infer(
    ctx: CheckContext, feeds: dict, axis: str, size: int, source: str, about: str = ""
) -> tuple[dict | None, list[str]]:
    try:
        return ctx.runner().infer(feeds), []
    except WorkerBrokeError:
        raise  # the runtime crashed, starved or hung: that is the failure, not the axis
    except Exception as e:
        return None, [f"dynamic_axes: '{axis}' of size {size} is refused by the model on {source}{about}: {e}"]


def _generated(ctx: CheckContext, specs: list, axis: str, why: str) -> tuple[dict | None, str, list[str]]:
    """Generated feeds with `axis` at PROOF_BATCH; when they cannot be made either, the reason the axis is unproven."""
    try:
        return generate(specs, batch=PROOF_BATCH, seed=7, sizes={axis: PROOF_BATCH}), f"generated inputs{why}", []
    except InputGenerationError as e:
        if not why:
            raise  # no samples and no valid inputs: the check's own failure, naming the key to declare
        return (
            None,
            "",
            [
                f"dynamic_axes: '{axis}' could not be proven at two sizes{why}, and no inputs can be generated "
                f"({e}) [{_src(ctx, 'dynamic_axes')}]"
            ],
        )


def dynamic_axis_problems(ctx: CheckContext, axis: str) -> list[str]:
    """Run with two sizes of the named dim, always. Along the batch (`core/batch`), each sample's output in the
    batch must equal its output run alone (a model whose answer depends on its batch-mates is not
    batch-dynamic); another axis (a sequence) is run at two lengths."""
    specs = ctx.interface()
    holders = [s for s in specs if s.shape and axis in s.shape]
    found = batching.find(specs)
    if not holders and found is not None and found.name == "?" and batching.is_batch_name(axis):
        # a batch the model leaves unnamed (scikit-learn's converters, an OpenVINO IR's -1): the batch all the same,
        # as everywhere else in the gate (core/batch); the declared name is checked on it
        return _batch_problems(ctx, specs, found, declared=axis)
    if not holders:
        names = sorted({d for s in specs for d in (s.shape or ()) if isinstance(d, str) and d != "?"})
        unnamed = [f"'{s.name}' axis {k}" for s in specs for k, d in enumerate(s.shape or ()) if d == "?"]
        nameless = (
            f"; the model leaves {', '.join(unnamed)} dynamic without a name: declare it in inputs[].shape "
            f"(e.g. shape: ['{axis}', ...]) to have it checked as '{axis}'"
            if unnamed
            else ""
        )
        return [
            f"dynamic_axes: '{axis}' is no dimension of any input (named dims: {', '.join(names) or 'none'})"
            f"{nameless} [{_src(ctx, 'dynamic_axes')}]"
        ]
    if found is not None and found.name == axis:
        return _batch_problems(ctx, specs, found)
    return _length_problems(ctx, specs, axis, holders)


def _batch_feeds(
    ctx: CheckContext, specs: list, batch: batching.Batch, where: dict
) -> tuple[dict | None, str, list[str]]:
    """Feeds with at least two rows along the batch, and where they come from: the artifact's samples (valid ids,
    real value statistics, which is where batch-dependent quantization shows), a single sample repeated, else
    generated inputs."""
    samples = ctx.sample_feeds()
    if samples is None:
        return _generated(ctx, specs, batch.name, "")
    shipped = f"the samples ({ctx.manifest.get('samples')})"
    n = batching.size(samples, where)
    if n is None or n == 0:
        held = ", ".join(f"'{k}' axis {v}" for k, v in where.items())
        return _generated(ctx, specs, batch.name, f" ({shipped} do not agree on one size along the batch: {held})")
    if n == 1:
        return (
            batching.repeat(samples, where, PROOF_BATCH),
            f"{shipped}, its one sample repeated {PROOF_BATCH} times",
            [],
        )
    return batching.take(samples, where, slice(0, MAX_SAMPLES)), shipped, []


def _batch_problems(ctx: CheckContext, specs: list, batch: batching.Batch, declared: str | None = None) -> list[str]:
    """`declared`: the name dynamic_axes gives a batch the model leaves unnamed."""
    axis = declared or batch.name
    where = batching.axes(specs, batch)
    about = f" [{batch.describe()}: {', '.join(f'axis {k} of {n!r}' for n, k in where.items())}]"
    feeds, source, problems = _batch_feeds(ctx, specs, batch, where)
    if feeds is None:
        return problems
    n = batching.size(feeds, where) or 0
    together, problems = _infer(ctx, feeds, axis, n, source, about)
    if together is None:
        return problems
    out_where = _output_axes(ctx, batch, where, together, n)
    for name, k in out_where.items():
        if together[name].shape[k] != n:
            problems.append(
                f"dynamic_axes: output '{name}' has {together[name].shape[k]} along '{axis}' (axis {k}) for a batch "
                f"of {n} on {source}: the model does not keep its batch (a Reshape to a fixed size inside?){about} "
                f"[{_src(ctx, 'dynamic_axes')}]"
            )
    if problems:
        return problems
    if not out_where:
        return [
            f"dynamic_axes: '{axis}' could not be proven: no output carries the batch (declare outputs[].shape "
            f"with '{axis}' where it sits){about} [{_src(ctx, 'dynamic_axes')}]"
        ]
    differ: dict[str, list[tuple[int, str]]] = {}
    flips: dict[str, list[int]] = {}
    for i in range(n):
        alone, problems = _infer(ctx, batching.take(feeds, where, slice(i, i + 1)), axis, 1, source, about)
        if alone is None:
            return problems
        for name, k in out_where.items():
            full = together[name]
            row = np.take(full, [i], axis=k)
            c = compare_output(
                name, row, alone[name], ctx.manifest.tolerance.for_output(name), against="the same sample run alone"
            )
            if not c.ok:
                detail = c.problem or "; ".join(
                    f"{r.metric} {r.value:.3g} vs {r.limit.value:.3g}" for r in c.rows if not r.ok and r.limit
                )
                differ.setdefault(name, []).append((i, detail))
                if (
                    full.dtype.kind == "f"
                    and full.ndim >= 2
                    and full.shape[-1] > 1
                    and np.argmax(row.reshape(-1, full.shape[-1]), -1).tolist()
                    != np.argmax(alone[name].reshape(-1, full.shape[-1]), -1).tolist()
                ):
                    flips.setdefault(name, []).append(i)
    quantized = ctx.facts().precision in QUANTIZED
    why = (
        "dynamic quantization computes one scale per batch"
        if quantized
        else "an op mixes the samples: a reduction, normalization or reshape across the batch axis"
    )
    for name, rows in differ.items():
        i, detail = rows[0]
        which = ", ".join(str(j) for j, _ in rows[:20]) + (", ..." if len(rows) > 20 else "")
        flipped = flips.get(name, [])
        flip_text = (
            f"; top-1 flips for sample(s) {', '.join(map(str, flipped[:20]))}" if flipped else "; no top-1 flips"
        )
        problems.append(
            f"dynamic_axes: sample {i} of a '{axis}'={n} run differs from the same sample run alone in output "
            f"'{name}': {detail} ({len(rows)} of {n} samples of {source} differ: {which}{flip_text}). "
            "The output depends on the batch-mates "
            f"({why}){about}; limits from 'tolerance' [{_src(ctx, 'dynamic_axes')}]"
        )
    return problems


def _output_axes(ctx: CheckContext, batch: batching.Batch, where: dict, outputs: dict, n: int) -> dict[str, int]:
    """Output name -> its batch axis: where its shape (declared, else the model's) names the batch; an output of
    unknown shape, when every input holds the batch at axis 0, at axis 0 if it has n rows there."""
    specs = {s.name: s for s in merge_interface(ctx.manifest.outputs, ctx.runner().outputs)}
    found = {}
    for name, a in outputs.items():
        k = batch.axis(specs.get(name))
        if (
            k is None
            and not (specs.get(name) and specs[name].shape)
            and set(where.values()) == {0}
            and a.ndim
            and a.shape[0] == n
        ):
            k = 0
        if k is not None and a.ndim > k:
            found[name] = k
    return found


def _length_problems(ctx: CheckContext, specs: list, axis: str, holders: list) -> list[str]:
    """Another axis than the batch (a sequence, an image size): run at the feeds' length and at another, a
    prefix of about half (a prefix of a token sequence is valid) or, from a length of 1, the feeds tiled to 2."""
    samples = ctx.sample_feeds()
    feeds, source, problems = None, "", []
    if samples is not None:
        shipped = f"the samples ({ctx.manifest.get('samples')})"
        sizes = {
            samples[s.name].shape[list(s.shape).index(axis)] for s in holders if samples[s.name].ndim == len(s.shape)
        }
        if len(sizes) == 1 and all(samples[s.name].ndim == len(s.shape) for s in holders) and min(sizes) > 0:
            feeds, source = samples, shipped
        else:
            feeds, source, problems = _generated(
                ctx,
                specs,
                axis,
                f" ({shipped} cannot be resized along '{axis}': their lengths "
                f"{sorted(sizes) or 'do not match the declared shapes'})",
            )
    else:
        feeds, source, problems = _generated(ctx, specs, axis, "")
    if feeds is None:
        return problems
    first = holders[0]
    size = feeds[first.name].shape[list(first.shape).index(axis)]
    other = max(1, size // 2) if size > 1 else 2
    resized = dict(feeds)
    for s in holders:
        k = list(s.shape).index(axis)
        resized[s.name] = np.take(feeds[s.name], np.arange(other) % size, axis=k)
    how = "cut to a prefix" if other < size else "tiled"
    for run_feeds, length, note in ((feeds, size, ""), (resized, other, f", {how}")):
        outputs, problems = _infer(ctx, run_feeds, axis, length, source + note)
        if outputs is None:
            return problems
        specs_out = {s.name: s for s in merge_interface(ctx.manifest.outputs, ctx.runner().outputs)}
        for name, a in outputs.items():
            shape = specs_out[name].shape if name in specs_out and specs_out[name].shape else ()
            if axis in shape and a.ndim == len(shape) and a.shape[list(shape).index(axis)] != length:
                k = list(shape).index(axis)
                return [
                    f"dynamic_axes: output '{name}' has {a.shape[k]} along '{axis}' (axis {k}) for '{axis}'={length} "
                    f"on {source}{note}: the model does not follow the axis (a Reshape to a fixed size inside?) "
                    f"[{_src(ctx, 'dynamic_axes')}]"
                ]
    return []


def run(ctx: CheckContext) -> CheckResult:
    limits = ctx.manifest.limits
    gated = [
        k for k in limits.declared if k not in ("max_accuracy_drop", "portable_to")
    ]  # test_accuracy, test_portability gate those
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
            problems.append(
                f"opset: the model imports opset {facts.opset}, outside [{lo if lo is not None else '-'}, {hi if hi is not None else '-'}] [{_src(ctx, 'opset')}]"
            )
    if limits.max_size_mb is not None:
        mb = facts.size_bytes / 1e6
        if mb > limits.max_size_mb.value:
            problems.append(
                f"max_size_mb: the model is {mb:.3f} MB, over {limits.max_size_mb.value:g} MB [{_src(ctx, 'max_size_mb')}]"
            )
    if limits.max_size_ratio is not None:
        if ctx.reference_kind != "model":
            problems.append(
                f"max_size_ratio: needs a model as reference.path to compare sizes with [{_src(ctx, 'max_size_ratio')}]"
            )
        else:
            ref_size = ctx.reference_facts().size_bytes
            ratio = facts.size_bytes / ref_size
            figures["size_ratio"] = ratio
            if ratio > limits.max_size_ratio.value:
                problems.append(
                    f"max_size_ratio: the model is {ratio:.3f} times its reference's size ({facts.size_bytes} vs {ref_size} bytes), "
                    f"over {limits.max_size_ratio.value:g} [{_src(ctx, 'max_size_ratio')}]"
                )
    if limits.allowed_ops is not None:
        allowed = set(limits.allowed_ops)
        extra = {op: n for op, n in sorted(facts.ops.items()) if op not in allowed}
        if extra:
            problems.append(
                f"allowed_ops: the model uses ops outside the list: {', '.join(f'{op} (x{n})' for op, n in extra.items())} [{_src(ctx, 'allowed_ops')}]"
            )
    for axis in limits.dynamic_axes:
        problems += dynamic_axis_problems(ctx, axis)
    return CheckResult.from_problems(
        NAME, ctx.artifact.id, problems, passed=f"{', '.join(gated)} hold", figures=figures
    )


CHECK = Check(NAME, run)
