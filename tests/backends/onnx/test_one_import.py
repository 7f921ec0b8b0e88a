"""onnxruntime is imported in one place (backends/onnx/runtime.py), which points its cache at a private directory:
a plain `import onnxruntime` elsewhere would write a device id under the user's real home in the processes that
keep it (pytest, the CLI, the service). Its submodules (onnxruntime.quantization) may be imported in a function
that called `onnxruntime()` first."""

import ast
from pathlib import Path

import model_checks

PACKAGE = Path(model_checks.__file__).parent
HOME = PACKAGE / "backends" / "onnx" / "runtime.py"


def _ort_imports(tree: ast.AST) -> list[tuple[int, bool]]:
    """(line, is a submodule import) of every import of onnxruntime under `tree`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, "." in a.name) for a in node.names if a.name.split(".")[0] == "onnxruntime"]
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "onnxruntime"
        ):
            out.append((node.lineno, "." in node.module))
    return out


def _first_call(tree: ast.AST) -> int | None:
    lines = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "onnxruntime"
    ]
    return min(lines, default=None)


def test_onnxruntime_is_imported_only_through_backends_onnx_runtime():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        seen: set[int] = set()
        for scope in [*scopes, tree]:
            first = _first_call(scope)
            for line, sub in _ort_imports(scope):
                if line in seen:
                    continue
                seen.add(line)
                if not (sub and first is not None and first < line):
                    found.append(f"{path.relative_to(PACKAGE)}:{line}")
    assert not found, f"onnxruntime imported outside backends/onnx/runtime.py's onnxruntime(): {found}"
