"""The `model-checks` command. Each subcommand lives in its own module and is imported only when run,
so `model-checks schema` never pays for torch or tensorflow.

A subcommand module defines `add_arguments(parser)` and `run(args) -> int`, and a module docstring whose
first line is the one-line help and whose rest (an example) is the --help epilog.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> module. Add a line here to add a subcommand (a module that needs an extra says so: `EXTRAS = "torch"`).
COMMANDS: dict[str, str] = {
    "schema": "model_checks.commands.schema",
    "validate": "model_checks.commands.validate",
    "export": "model_checks.commands.export",
    "trace": "model_checks.commands.trace",
    "quantize": "model_checks.commands.quantize",
    "fp16": "model_checks.commands.fp16",
    "optimize": "model_checks.commands.optimize",
    "convert-keras": "model_checks.commands.convert_keras",
    "convert-tflite": "model_checks.commands.convert_tflite",
    "convert-sklearn": "model_checks.commands.convert_sklearn",
    "package": "model_checks.commands.package",
    "tfmot-matrix": "model_checks.commands.tfmot_matrix",
    "localize": "model_checks.commands.localize",
    "to-torch": "model_checks.commands.to_torch",
    "serve": "model_checks.commands.serve",
    "loadtest": "model_checks.commands.loadtest",
    "merge": "model_checks.commands.merge",
    "run": "model_checks.commands.run",
    "canary": "model_checks.commands.canary",
}
DESCRIPTION = """Gate and produce ML model artifacts.

The gate itself is a pytest plugin: run `pytest --model-checks DIR` (or set model_checks_roots in pytest.ini).
These commands check manifests and produce artifacts; each names the extra it needs: pip install 'model-checks[EXTRA]'."""


def _doc(module: str) -> tuple[str, str, str]:
    """(summary, epilog, extras) read from the module's docstring and its `EXTRAS = "..."` without importing it
    (its heavy imports stay unpaid)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    text, extras = "", ""
    if spec and spec.origin:
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        text = ast.get_docstring(tree) or ""
        extras = next(
            (
                n.value.value
                for n in tree.body
                if isinstance(n, ast.Assign)
                and isinstance(n.value, ast.Constant)
                and any(getattr(t, "id", None) == "EXTRAS" for t in n.targets)
            ),
            "",
        )
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip(), extras


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from model_checks import __version__

    parser = _Parser(prog="model-checks", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"model-checks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        summary, epilog, extras = _doc(module)
        if extras:
            summary = f"{summary} [extra: {extras}]"
        p = sub.add_parser(
            name, help=summary, description=summary, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, rest = parser.parse_known_args(argv)
    if rest:  # only a command that hands options on to pytest takes unknown ones
        if not (args.command and getattr(importlib.import_module(COMMANDS[args.command]), "PYTEST_ARGS", False)):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command and getattr(importlib.import_module(COMMANDS[args.command]), "PYTEST_ARGS", False):
        args.pytest_args = rest
    if not args.command:
        parser.print_help()
        return 2
    from model_checks.core.errors import ModelChecksError
    from model_checks.core.requires import is_optional, missing

    try:
        return int(importlib.import_module(COMMANDS[args.command]).run(args) or 0)
    except ModelChecksError as e:
        text = e.for_cli() if hasattr(e, "for_cli") else str(e)  # a producer's hint names the flag, not the parameter
        print(f"model-checks {args.command}: error: {text}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:  # an extra not installed: a sentence, never a traceback
        if not is_optional(e):
            raise
        print(f"model-checks {args.command}: error: {missing(e, None, args.command)}", file=sys.stderr)
        return 1
    except OSError as e:  # the machine's answer about a path (missing folder, full or read-only disk): one line
        from model_checks.safety.text import printable

        where = f": {printable(str(e.filename))}" if e.filename else ""
        print(f"model-checks {args.command}: error: {printable(e.strerror or str(e))}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
