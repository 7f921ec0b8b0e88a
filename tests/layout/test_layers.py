"""The floors of the package (issue 21): each module sits on a floor, and imports only from its own floor or one
below, whether the import runs at load time or inside a function. The floors follow the call chain (ARCHITECTURE.md):

  0 ground        errors, results, file io, argument types, text made safe, the interface types
                  (manifest.model: TensorSpec, Limit, ...), worker limits
  1 declarations  the framework registry and each backend folder's declaration, content sniffing, optional imports
  2 contracts     safety (paths, digests), manifest (YAML, schema, policy, the typed Manifest), the serving
                  protocol's codec (a client's request checked and typed: the service and the model's worker read it)
  3 runtimes      backends (loader, runner, facts, timing), isolation (worker processes)
  4 engine        artifacts, discovery and roots, inputs, references, layout, metrics, the model pool, shards,
                  the check context; the libraries checks call (localize, tfmot, serving, the producers' converters)
  5 checks        each check module and the registry of them, budgets, serving's check
  6 session       the gate session (runs checks)
  7 faces         plugin, commands and the CLI, cluster, nightly, canary, examples, the public API, and the
                  producers that measure and package with the checks (package, figures, torch_precision)

A module's floor is that of the longest matching entry of FLOORS (an entry ending in `=` matches that module only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "model_checks"
NAMES = ("ground", "declarations", "contracts", "runtimes", "engine", "checks", "session", "faces")

FLOORS: dict[str, int] = {
    "model_checks=": 7,
    "model_checks.__main__": 7,
    "model_checks.cli": 7,
    "model_checks.plugin": 7,
    "model_checks.commands": 7,
    "model_checks.cluster": 7,
    "model_checks.nightly": 7,
    "model_checks.examples": 7,
    "model_checks.canary": 7,
    # the producers measure and package with the checks' own code: above them
    "model_checks.producers.package": 7,
    "model_checks.producers.figures": 7,
    "model_checks.producers.torch_precision": 7,
    "model_checks.core.session": 6,
    "model_checks.checks": 5,
    "model_checks.serving.check": 5,
    "model_checks.core": 4,
    "model_checks.checks.context": 4,
    "model_checks.localize": 4,
    "model_checks.tfmot": 4,
    "model_checks.serving": 4,
    "model_checks.serving.protocol": 2,
    "model_checks.producers": 4,
    "model_checks.backends": 3,
    "model_checks.isolation": 3,
    "model_checks.safety": 2,
    "model_checks.manifest": 2,
    "model_checks.schema": 2,
    "model_checks.backends.registry": 1,
    "model_checks.safety.sniff": 1,
    "model_checks.core.requires": 1,
    "model_checks.core.errors": 0,
    "model_checks.core.results": 0,
    "model_checks.core.fileio": 0,
    "model_checks.core.argtypes": 0,
    "model_checks.safety.text": 0,
    "model_checks.manifest.model": 0,
    "model_checks.isolation.limits": 0,
    "model_checks.backends.precision": 0,
    "model_checks.core.quantio": 0,
    "model_checks.core.lazy": 0,
    "model_checks.core.environment": 0,
    "model_checks.core.machine": 0,  # reads the machine, imports nothing of ours but safety.text: a worker's death names it
    "model_checks.core=": 0,
    "model_checks.safety=": 0,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# each backend folder's __init__.py is its declaration (floor 1); its other modules are the runtime (floor 3)
FLOORS.update(
    {f"{name}=": 1 for name, p in MODULES.items() if p.parent.parent.name == "backends" and p.name == "__init__.py"}
)


def floor_of(module: str) -> int:
    best = max(
        (k for k in FLOORS if (module == k[:-1] if k.endswith("=") else module == k or module.startswith(k + "."))),
        key=lambda k: (len(k.rstrip("=")), k.endswith("=")),
        default=None,
    )
    assert best is not None, f"{module} is on no floor: add it to FLOORS in {__file__}"
    return FLOORS[best]


def imports_of(module: str, path: Path) -> set[str]:
    """The model_checks modules `module` imports anywhere in its body (from X import Y counts X.Y when it is a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {m for m in found if m == "model_checks" or m.startswith("model_checks.")}


def _type_checking_only(path: Path) -> set[str]:
    """Imports under `if TYPE_CHECKING:`: names for annotations, never run."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            out |= {n.module for n in ast.walk(node) if isinstance(n, ast.ImportFrom) and n.module}
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_floor_above_its_own(module):
    path = MODULES[module]
    mine = floor_of(module)
    above = sorted(
        f"{m} (floor {floor_of(m)}, {NAMES[floor_of(m)]})"
        for m in imports_of(module, path) - _type_checking_only(path)
        if floor_of(m) > mine
    )
    assert not above, f"{module} (floor {mine}, {NAMES[mine]}) imports from above its floor: {', '.join(above)}"


def test_every_module_is_on_a_floor():
    assert all(floor_of(m) in range(len(NAMES)) for m in MODULES)


def test_the_library_never_imports_the_pytest_face():
    library = [m for m in MODULES if floor_of(m) < 7]
    offenders = {
        m: sorted(i for i in imports_of(m, MODULES[m]) if i.startswith("model_checks.plugin")) for m in library
    }
    assert not {m: v for m, v in offenders.items() if v}


FRAMEWORKS = (
    "torch",
    "tensorflow",
    "tf_keras",
    "keras",
    "onnx",
    "onnxruntime",
    "onnxoptimizer",
    "onnx2torch",
    "openvino",
    "ai_edge_litert",
    "tflite_runtime",
    "tensorflow_model_optimization",
)
# Where a framework may be imported: its backend, and the wings that exist to drive frameworks.
FRAMEWORK_HOMES = (
    "model_checks.backends",
    "model_checks.producers",
    "model_checks.tfmot",
    "model_checks.examples",
    "model_checks.serving",
    "model_checks.localize",
)


def framework_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        found |= {n for n in names if n.split(".")[0] in FRAMEWORKS}
    return found


def test_no_framework_is_imported_outside_its_homes():
    outside = {
        m: sorted(framework_imports(p))
        for m, p in MODULES.items()
        if not m.startswith(FRAMEWORK_HOMES) and framework_imports(p)
    }
    assert not outside, f"framework imports outside {', '.join(FRAMEWORK_HOMES)}: {outside}"
