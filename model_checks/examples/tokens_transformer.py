"""The token family: a small transformer encoder (torch's own `nn.TransformerEncoder` and embeddings) with the
three int64 inputs of a BERT export (`input_ids`, `token_type_ids`, `attention_mask`), dynamic batch and
sequence, trained deterministically on a synthetic task in seconds; fp32, fp16 and int8 (dynamic) ONNX.

The task (the class is the first token's id modulo 4, attended only where the mask is 1) gives wide logit
margins, so int8 noise does not flip a prediction by chance: a flip the gate reports is the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

VOCAB, TYPES, MAX_LEN, WIDTH, HEADS, LAYERS, CLASSES = 64, 2, 32, 32, 4, 2, 4
SEQ, N_SAMPLES, STEPS, SEED = 12, 16, 300, 0
INPUTS = ("input_ids", "token_type_ids", "attention_mask")
TOLERANCE = {"fp16": {"rel_l2": 1e-2, "mae": None}, "int8": {"rel_l2": None, "mae": None, "top1_agreement": 0.95}}
LIMITS = {"max_size_mb": 1, "dynamic_axes": ["batch", "sequence"]}
# Two attention layers run ~40 kernels a call, against the CNNs' ten: the tail of their latency on a shared CI
# machine is the scheduler's, so p99 gets the room of the kernel count; p50 still catches a model gone 10x slower.
BUDGETS = {"cpu": {"latency_ms": {"p50": 1.0, "p99": 40.0}, "throughput_per_s": 2000}}


def build() -> Any:
    import torch
    from torch import nn

    class TokenClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens, self.types, self.positions = (
                nn.Embedding(VOCAB, WIDTH),
                nn.Embedding(TYPES, WIDTH),
                nn.Embedding(MAX_LEN, WIDTH),
            )
            layer = nn.TransformerEncoderLayer(WIDTH, HEADS, dim_feedforward=2 * WIDTH, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.head = nn.Linear(WIDTH, CLASSES)

        def forward(
            self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> torch.Tensor:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            h = self.tokens(input_ids) + self.types(token_type_ids) + self.positions(positions)
            h = self.encoder(h, src_key_padding_mask=attention_mask == 0)
            keep = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))

    return TokenClassifier()


def batch(rng: np.random.Generator, n: int, seq: int = SEQ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token feeds as a tokenizer makes them (padding at the end, second segment of type 1) and their labels."""
    ids = rng.integers(1, VOCAB, size=(n, seq))
    lengths = rng.integers(2, seq + 1, size=n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    types = ((np.arange(seq)[None, :] >= (lengths // 2)[:, None]) & (mask == 1)).astype(np.int64)
    ids = np.where(mask == 1, ids, 0)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}, (ids[:, 0] % CLASSES).astype(np.int64)


def train() -> Any:
    """The model trained with fixed seeds, on one thread as the digits CNN is, so the weights do not depend on how
    many cores the machine has."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(SEED)
        model = build()
        rng = np.random.default_rng(SEED)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(STEPS):
            feeds, y = batch(rng, 64)
            loss = torch.nn.functional.cross_entropy(
                model(*(torch.from_numpy(feeds[k]) for k in INPUTS)), torch.from_numpy(y)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.eval()
    finally:
        torch.set_num_threads(threads)


def export(model: Any, feeds: dict[str, np.ndarray], path: Path) -> Path:
    """torch.export-based ONNX export with named dynamic batch and sequence on every input. (The TorchScript
    exporter freezes the sequence length inside nn.MultiheadAttention's reshapes: the gate's second sequence
    length refuses that model, as it should.)"""
    import torch

    batch_dim, seq_dim = torch.export.Dim("batch"), torch.export.Dim("sequence", max=MAX_LEN)
    args = tuple(torch.from_numpy(feeds[k]) for k in INPUTS)
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=list(INPUTS),
        output_names=["logits"],
        opset_version=18,
        dynamo=True,
        dynamic_shapes={k: {0: batch_dim, 1: seq_dim} for k in INPUTS},
    )
    import onnx

    model_proto = onnx.load(str(path))
    del model_proto.graph.value_info[
        :
    ]  # stale intermediate shapes that onnx's shape inference (in quantization) rejects
    for node in model_proto.graph.node:  # the exporter's notes: this file's path and line numbers, per node
        node.ClearField("metadata_props")
    onnx.save(model_proto, str(path), save_as_external_data=False)  # one file: the exporter wrote the weights beside it
    Path(f"{path}.data").unlink(missing_ok=True)
    return path


def transformer_family(out: Path) -> list:
    from model_checks.examples.build import Family, _fresh
    from model_checks.producers import fp16, ort_quantize
    from model_checks.producers.package import package

    model = train()
    samples, _ = batch(np.random.default_rng(SEED + 1), N_SAMPLES)
    fam = Family(out, "tokens_encoder", samples, (np.zeros(0), np.zeros(0)), "NC")
    for variant in ("fp32", "fp16", "int8"):
        _fresh(fam.dir(variant))
    fp32 = export(model, samples, fam.fp32)
    made = [(fp32, "fp32", ["torch.export"])]
    f16 = fp16.to_fp16(fp32, fam.dir("fp16") / "model.onnx", keep_io_types=True, samples=samples)
    made.append((f16.path, "fp16", ["fp16", "keep_io_types"]))
    # quant_pre_process cannot infer shapes through a dynamic sequence axis here; the graph is quantized as exported
    q = ort_quantize.quantize_dynamic(
        fp32, fam.dir("int8") / "model.onnx", weight_type="int8", preprocess=False, samples=samples
    )
    made.append((q.path, "int8", list(q.steps)))
    # input_ids and token_type_ids index embeddings, so their ranges are proven by the graph; the mask is declared.
    return [
        package(
            path,
            fam.dir(variant),
            model_name=f"tokens_encoder_{variant}",
            version="1.0",
            root=out,
            reference=None if variant == "fp32" else fp32,
            samples=samples,
            input_range={"attention_mask": (0, 1)},
            optimization=steps,
            tolerance=TOLERANCE.get(variant),
            limits=LIMITS,
            budgets=BUDGETS,
        )
        for path, variant, steps in made
    ]
