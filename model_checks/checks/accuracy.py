"""`accuracy`: on declared eval data, the artifact's accuracy against its reference's, the drop against
`limits.max_accuracy_drop`, and the declared `accuracy_drop` within 0.005 of the measured one."""

from __future__ import annotations

from pathlib import Path

from model_checks.backends.base import Runner
from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check, Figure
from model_checks.core.errors import InferenceError, ModelChecksError
from model_checks.core.inputs import load_npz
from model_checks.core.lazy import lazy
from model_checks.core.results import CheckResult

np = lazy("numpy")

NAME = "accuracy"
CLAIM_SLACK = 0.005
BATCH = 256


def pick_output(outs: dict[str, np.ndarray], n: int, wanted: str | None, where: str) -> tuple[str, str]:
    """(name, how) of the output to score for a batch of `n`: `accuracy.output` when declared, else the
    scores output (floating, one row per sample, one column per class), else a label output (one integer
    or string per sample), compared with the labels directly. skl2onnx puts the labels first."""

    def how(a: np.ndarray) -> str | None:
        if a.ndim == 2 and a.shape[0] == n and a.shape[1] > 1 and a.dtype.kind == "f":
            return "argmax of scores"
        if a.shape[:1] == (n,) and (a.ndim == 1 or a.shape[1:] == (1,)) and a.dtype.kind in "iuUSOb":
            return "labels"
        return None

    shapes = ", ".join(f"'{k}' {a.dtype} {list(a.shape)}" for k, a in outs.items())
    if wanted is not None:
        if wanted not in outs:
            raise InferenceError(f"{where}: accuracy.output '{wanted}' is not an output of the model (it has {shapes})")
        h = how(outs[wanted])
        if h is None:
            raise InferenceError(
                f"{where}: accuracy.output '{wanted}' is {outs[wanted].dtype} {list(outs[wanted].shape)} for {n} samples; "
                "it must hold one row of class scores per sample, or one label per sample"
            )
        return wanted, h
    for kind in ("argmax of scores", "labels"):
        for k, a in outs.items():
            if how(a) == kind:
                return k, kind
    raise InferenceError(
        f"{where}: no output holds one row of class scores or one label per sample for a batch of {n} "
        f"(outputs: {shapes}); accuracy needs one, named by accuracy.output"
    )


def accuracy(
    runner: Runner, x: np.ndarray, y: np.ndarray, wanted: str | None = None, where: str = "", batch: int = BATCH
) -> tuple[float, str]:
    """Top-1 accuracy and the output it scored ("'probabilities' (argmax of scores)"); the batch is fixed
    at 1 when the model's is."""
    spec = runner.inputs[0]
    if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] > 0:
        batch = spec.shape[0]
    hits = 0
    want = np.dtype(spec.dtype) if spec.dtype and spec.dtype != "bfloat16" else x.dtype
    chosen: tuple[str, str] | None = None
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        outs = runner.infer({spec.name: chunk.astype(want, copy=False)})
        chosen = chosen or pick_output(outs, len(chunk), wanted, where or runner.path.name)
        out = np.asarray(outs[chosen[0]])
        if out.ndim == 0 or out.shape[0] != len(chunk):  # never let numpy broadcast predictions against labels
            raise InferenceError(
                f"{runner.path.name}: output '{chosen[0]}' has shape {list(out.shape)} for a batch of {len(chunk)} samples; "
                "accuracy needs one row of scores or one label per sample"
            )
        predicted = np.argmax(out, axis=-1) if chosen[1] == "argmax of scores" else out.reshape(len(out))
        hits += int(np.sum(predicted == y[i : i + batch]))
    assert chosen is not None
    return hits / len(x), f"'{chosen[0]}' ({chosen[1]})"


def eval_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x and y of an eval_data `.npz`: one sample of x per label of a 1-d y."""
    data = load_npz(path, "eval_data")
    if "x" not in data or "y" not in data:
        raise ModelChecksError(f"{path.name} needs arrays x and y (it has {', '.join(data) or 'none'})")
    x, y = data["x"], data["y"]
    if x.ndim == 0 or y.ndim != 1 or len(x) == 0 or len(x) != len(y):
        raise ModelChecksError(
            f"{path.name} needs x with one sample per label of a 1-d y (x has shape {list(x.shape)}, y {list(y.shape)})"
        )
    return x, y


def run(ctx: CheckContext) -> CheckResult:
    m = ctx.manifest
    eval_path = ctx.artifact.path("eval_data")
    if eval_path is None:
        return CheckResult.skip(NAME, f"no eval_data declared in {ctx.where}")
    try:
        x, y = eval_data(eval_path)
    except ModelChecksError as e:  # the data, not the model: the model's other checks and budgets still run
        return CheckResult(
            NAME,
            False,
            f"{NAME}: {ctx.artifact.id}: invalid eval_data: {str(e).removeprefix('eval_data: ')}",
            (f"  fix {eval_path.name} or eval_data in {ctx.where}",),
        )
    runner = ctx.runner()
    if len(runner.inputs) != 1:
        raise InferenceError(f"{ctx.where}: eval_data needs a single-input model; this one has {len(runner.inputs)}")
    wanted = m.get("accuracy.output")
    acc, scored = accuracy(runner, x, y, wanted, ctx.where)
    figures: dict = {"accuracy": acc}
    problems: list[str] = []
    notes: list[str] = []
    if ctx.reference_kind == "model":
        ref_runner = ctx.reference_runner()
        ref_x = next(iter(ctx.reference_feeds({runner.inputs[0].name: x}).values()))  # in the reference's layout
        ref_acc, ref_scored = accuracy(
            ref_runner, ref_x, y, None if ctx.cross_framework else wanted, f"{ctx.where}: reference.path"
        )
        drop = ref_acc - acc
        figures.update(reference_accuracy=ref_acc, accuracy_drop=drop)
        limit = m.limits.max_accuracy_drop
        if limit is not None and drop > limit.value:
            problems.append(
                f"accuracy drop {drop:.4f} (reference {ref_acc:.4f} -> this {acc:.4f} on {len(y)} samples) exceeds "
                f"limits.max_accuracy_drop {limit.value:g} from {m.source_of('limits.max_accuracy_drop')}"
            )
        claimed = m.get("accuracy_drop")
        if claimed is not None and abs(claimed - drop) > CLAIM_SLACK:
            problems.append(
                f"accuracy_drop: declared {claimed}, measured {drop:.4f} (more than {CLAIM_SLACK} apart); update accuracy_drop in {ctx.where}"
            )
        headline = f"accuracy {acc:.4f} from output {scored}, reference {ref_acc:.4f} from {ref_scored}, drop {drop:+.4f} on {len(y)} samples"
    else:
        if m.get("accuracy_drop") is not None or m.limits.max_accuracy_drop is not None:
            problems.append(
                "accuracy_drop / limits.max_accuracy_drop need a model as reference.path to measure the reference's accuracy"
            )
        headline = f"accuracy {acc:.4f} from output {scored} on {len(y)} samples (no reference model to compare)"
    return CheckResult.from_problems(NAME, ctx.artifact.id, problems, passed=headline, figures=figures, notes=notes)


# Its failures concern its eval data or its own figures: the model was had by integrity, and budgets still run.
CHECK = Check(NAME, run, blocking="never", figures=(Figure("accuracy drop", "accuracy_drop", "+.4f"),))
