"""TorchScript archives (`.pt`/`.pth`): loader, runner, inspect. torch is imported only inside them."""

from __future__ import annotations

from pathlib import Path

from model_checks.backends.registry import Framework


def carries_code(fmt: str, path: Path) -> str:
    return "a TorchScript archive carries code that runs when it loads"


FRAMEWORK = Framework(
    name="TorchScript",
    formats=("torchscript",),
    suffixes={".pt": "torchscript", ".pth": "torchscript"},
    family="torch",
    extra="model-checks[torch]",
    modules=("torch",),
    runtime={"torchscript": "torch"},
    layout={"torchscript": "NCHW"},
    carries_code=carries_code,
)
