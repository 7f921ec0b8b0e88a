"""The PyTorch model a producer command names (`--model MODULE:CALLABLE`, `--weights`), built with its example
inputs: torch is imported here, never by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def build_model(ref: str, weights: Path | None, input_shapes: Sequence[Sequence[int]]) -> tuple[Any, tuple[Any, ...]]:
    """The nn.Module `ref` names, with its weights loaded, in eval mode, and seeded example inputs."""
    import torch

    from model_checks.producers.loading import load_object
    from model_checks.producers.verify import ProducerError

    factory = load_object(ref, "--model")
    model = factory() if not isinstance(factory, torch.nn.Module) else factory
    if not isinstance(model, torch.nn.Module):
        raise ProducerError(f"--model: {ref} gave a {type(model).__name__}, not a torch.nn.Module")
    if weights:
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as e:
            raise ProducerError(
                f"--weights: {weights} does not load into {type(model).__name__}: {str(e).splitlines()[0][:300]}"
            ) from None
    g = torch.Generator().manual_seed(0)
    example = tuple(torch.rand(s, generator=g) for s in input_shapes)
    return model.eval(), example


def check_inputs(shapes: Sequence[Sequence[int]]) -> list[Any]:
    """Seeded inputs of each shape, negative and positive, to compare a traced model on."""
    import torch

    g = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=g) * sign for s in shapes for sign in (1, -1)]
