"""Equivalence by property, an opt-in: hypothesis draws inputs from the declared interface (the batch within
its dynamic range, values within each input's `range`), derandomized when CI is set so a run is
reproducible, and a failure shows the smallest input it found. Not part of the default gate (it runs a
model dozens of times); call it from a test of your own:

    from model_checks.core.properties import equivalence_property

    def test_equivalence_by_property(model_checks_session, model_checks_artifact):
        result = equivalence_property(model_checks_session.pool, model_checks_artifact)
        if result.skipped:
            pytest.skip(result.skipped)
        assert result, str(result)

hypothesis is imported only here, only when called.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from model_checks.core.artifact import Artifact
from model_checks.core.batch import find as find_batch
from model_checks.core.inputs import BATCH_SIZES, DEFAULT_RANGES, concrete_shape, integer_range
from model_checks.core.metrics import Comparison, compare_outputs
from model_checks.core.pool import ModelPool
from model_checks.core.results import CheckResult
from model_checks.manifest.model import TensorSpec

NAME = "equivalence_property"
MAX_EXAMPLES = 25
MAX_BATCH = max(BATCH_SIZES)
SHOWN_VALUES = 16  # an input this small is shown whole; larger ones by shape, range and their non-fill values


def feeds_strategy(specs: Sequence[TensorSpec], max_batch: int = MAX_BATCH) -> Any:
    """Feeds for `specs`: one batch size (1..max_batch when there is a batch, `core/batch`) shared by all inputs
    along the batch wherever each carries it; inputs without it at their declared shape."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    found = find_batch(specs)
    dynamic = found is not None

    def arrays(batch: int) -> Any:
        fields = {}
        for s in specs:
            dtype = np.dtype(s.dtype or "float32")
            if dtype.kind == "f":
                lo, hi = s.range or DEFAULT_RANGES["f"]
                width = {2: 16, 4: 32}.get(dtype.itemsize, 64)
                elements = st.floats(float(lo), float(hi), width=width, allow_nan=False, allow_infinity=False)
            elif dtype.kind == "b":
                elements = st.booleans()
            else:
                elements = st.integers(*integer_range(s))  # inclusive, like generated inputs
            shape = concrete_shape(s, batch, batch_name=found.name if found else "")
            fields[s.name] = hnp.arrays(dtype, shape, elements=elements, fill=elements)
        return st.fixed_dictionaries(fields)

    batches = st.integers(1, max_batch) if dynamic else st.just(1)
    return batches.flatmap(arrays)


def describe(feeds: Mapping[str, np.ndarray]) -> list[str]:
    """An input as a user reads it: small arrays whole, large ones by shape, range and the values that stand out."""
    lines = []
    for name, a in feeds.items():
        if a.size <= SHOWN_VALUES:
            lines.append(f"{name}: shape {list(a.shape)} = {np.array2string(a.ravel(), precision=6, separator=', ')}")
            continue
        values, counts = np.unique(a, return_counts=True)
        fill = values[np.argmax(counts)]
        odd = np.argwhere(a != fill)[:5]
        shown = ", ".join(f"{list(map(int, i))}={a[tuple(i)]!r}" for i in odd)
        lines.append(
            f"{name}: shape {list(a.shape)}, range [{a.min()!r}, {a.max()!r}], {a.size - int((a == fill).sum())} value(s) other than {fill!r}"
            + (f": {shown}" if shown else "")
        )
    return lines


def check(
    run_model: Callable[[dict], dict],
    run_reference: Callable[[dict], dict],
    specs: Sequence[TensorSpec],
    limits_for: Callable,
    max_examples: int = MAX_EXAMPLES,
    derandomize: bool | None = None,
) -> tuple[int, dict | None, Comparison | None]:
    """(examples run, the smallest failing feeds or None, its comparison). Derandomized when CI is set, unless told."""
    from hypothesis import HealthCheck, given, settings

    derandomize = bool(os.environ.get("CI")) if derandomize is None else derandomize
    seen = {"n": 0}
    last: dict[str, Any] = {}

    @settings(
        max_examples=max_examples,
        derandomize=derandomize,
        deadline=None,
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(feeds_strategy(specs))
    def prop(feeds: dict) -> None:
        seen["n"] += 1
        comparison = compare_outputs(run_model(feeds), run_reference(feeds), limits_for)
        if not comparison:
            last.update(feeds=feeds, comparison=comparison)  # hypothesis replays the smallest failure last
            raise AssertionError("outputs differ")

    try:
        prop()
    except AssertionError:
        return seen["n"], last["feeds"], last["comparison"]
    return seen["n"], None, None


def equivalence_property(
    pool: ModelPool, artifact: Artifact, max_examples: int = MAX_EXAMPLES, derandomize: bool | None = None
) -> CheckResult:
    """Equivalence of `artifact` with its reference model on hypothesis-drawn inputs, as a CheckResult."""
    from model_checks.checks.context import CheckContext

    ctx = CheckContext(artifact, pool)
    if ctx.reference_path is None or ctx.reference_kind != "model":
        return CheckResult.skip(NAME, f"needs a model as reference.path in {ctx.where}")
    runner = ctx.runner()
    n, smallest, comparison = check(
        runner.infer,
        ctx.reference_outputs,
        ctx.interface(),
        ctx.manifest.tolerance.for_output,
        max_examples,
        derandomize,
    )
    if smallest is None:
        return CheckResult(
            NAME, True, f"{NAME}: {artifact.id} matches {ctx.manifest.get('reference.path')} on {n} generated input(s)"
        )
    lines = [
        "  smallest input found (hypothesis shrank it):",
        *(f"    {line}" for line in describe(smallest)),
        *comparison.render(),
    ]  # type: ignore[union-attr]
    return CheckResult(
        NAME, False, f"{NAME}: {artifact.id} differs from its reference on a generated input ({n} tried)", tuple(lines)
    )
