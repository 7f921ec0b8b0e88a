"""int8 kernels of an ONNX model and what an x86 CPU without VNNI makes of them.

onnxruntime's U8S8 kernels on x86-64 without VNNI (AVX2, AVX-512 without VNNI) multiply with VPMADDUBSW: each
pair of adjacent u8 x s8 products along the reduction axis is added and saturated to int16 before the int32
accumulation (VPMADDWD). Signed activations (S8S8) are shifted to u8 (+128) first, so they take the same path.
A pair saturates only when |w| can exceed 64 against a full 8-bit activation: weights quantized to 7 bits
(`reduce_range`) or u8 weights (U8U8) never do, nor does VNNI (VPDPBUSD) or ARM's SDOT/UDOT.

`kernels(model)` finds the integer Conv, MatMul and Gemm (QDQ or QOperator, static or dynamic, onnxruntime's
com.microsoft QGemm and MatMulIntegerToFloat too) with their weights, stored as integers or, as quantization-aware
training exports them, as float weights quantized in the graph (QuantizeLinear on the initializer); `saturating_pairs` is the emulated dot product; `simulate(path, feeds)` runs the model with every
kernel that can saturate replaced by its emulation, in topological order, so the error propagates as it would
on such a CPU. Run where the model runs (the worker), never on a model that was not loaded safely first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

INT16 = (-32768, 32767)
QDQ_KERNELS = ("Conv", "MatMul", "Gemm")
# integer matrix products whose activation is quantized inside the kernel, where no tensor holds it: not emulated
NOT_EMULATED = ("DynamicQuantizeMatMul", "QAttention", "QOrderedMatMul", "QuantizeBFP")
GEMMS = ("Gemm", "QGemm")
CONVS = ("Conv", "QLinearConv", "ConvInteger")
# Where a QOperator kernel takes each of its inputs: the activation, its scale and zero point, the weight, its scale
# and zero point, the output's scale and zero point, an int32 bias in accumulator units. onnxruntime's own
# (com.microsoft) integer products are among them, as its quantizer writes them (QGemm: a Gemm quantized in the
# QOperator format) and its optimizer saves them (MatMulIntegerToFloat): the same MLAS kernels.
QOP_INPUTS: dict[str, tuple[int | None, ...]] = {
    "QLinearConv": (0, 1, 2, 3, 4, 5, 6, 7, 8),
    "QLinearMatMul": (0, 1, 2, 3, 4, 5, 6, 7, None),
    "QGemm": (0, 1, 2, 3, 4, 5, 7, 8, 6),
    "MatMulIntegerToFloat": (0, 2, 4, 1, 3, 5, None, None, None),  # its bias is float, added after the scales
    "ConvInteger": (0, None, 2, 1, None, 3, None, None, None),
    "MatMulInteger": (0, None, 2, 1, None, 3, None, None, None),
}
U8_MAX = 255
CHUNK = 1 << 22  # elements of the pair products held at once


@dataclass(frozen=True)
class IntKernel:
    """One integer Conv/MatMul/Gemm: where its integer activation comes from and its weight as stored."""

    name: str
    op: str  # Conv / MatMul / Gemm (QDQ) or a QOperator
    output: str
    act: str  # the integer activation tensor
    act_signed: bool
    act_zp: str | None
    act_scale: str | None
    weight: np.ndarray = field(repr=False)
    weight_scale: str | None
    weight_zp: str | None
    out_scale: str | None = None
    out_zp: str | None = None
    attrs: dict = field(default_factory=dict)
    bias: str | None = None  # a QOperator's int32 bias, in accumulator units (scale: activation's x weight's)

    @property
    def kind(self) -> str:
        return f"{'S8' if self.act_signed else 'U8'}{'S8' if self.weight.dtype == np.int8 else 'U8'}"

    @property
    def weight_range(self) -> tuple[int, int]:
        return int(self.weight.min()), int(self.weight.max())

    def worst_pair(self) -> int:
        """The largest |pair sum| any 8-bit activation can make with these weights (VPMADDUBSW's int16 input)."""
        w = reduction_matrix(self).astype(np.int64)
        if w.shape[0] % 2:
            w = np.concatenate([w, np.zeros((1, w.shape[1]), np.int64)])
        pos = np.maximum(w, 0)[0::2] + np.maximum(w, 0)[1::2]
        neg = np.minimum(w, 0)[0::2] + np.minimum(w, 0)[1::2]
        return int(U8_MAX * max(pos.max(initial=0), -neg.min(initial=0)))

    @property
    def can_saturate(self) -> bool:
        """Signed weights whose pairs can leave int16 against a full 8-bit activation."""
        return self.weight.dtype == np.int8 and self.worst_pair() > INT16[1]


def _attrs(node: Any) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _dtype(name: str | None, inits: dict, default: type = np.uint8) -> Any:
    return inits[name].dtype if name and name in inits else np.dtype(default)


def kernels(model: Any) -> list[IntKernel]:
    """The integer Conv/MatMul/Gemm of an ONNX ModelProto whose weight is an int8/uint8 initializer, in graph order."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    found = []

    def opt(node: Any, i: int) -> str | None:
        return node.input[i] if len(node.input) > i and node.input[i] else None

    for n in model.graph.node:
        name = n.name or n.output[0]
        if n.op_type in QDQ_KERNELS and len(n.input) >= 2:
            dq_a, dq_w = producer.get(n.input[0]), producer.get(n.input[1])
            if not (
                dq_a is not None
                and dq_a.op_type == "DequantizeLinear"
                and dq_w is not None
                and dq_w.op_type == "DequantizeLinear"
            ):
                continue
            w = inits.get(dq_w.input[0])
            if w is None:
                w = _quantized_in_graph(producer.get(dq_w.input[0]), inits)
            if w is None or w.dtype not in (np.int8, np.uint8):
                continue
            src = producer.get(dq_a.input[0])
            zp = opt(dq_a, 2)
            signed = _dtype(zp, inits) == np.int8 if src is None or src.op_type != "DynamicQuantizeLinear" else False
            found.append(
                IntKernel(
                    name,
                    n.op_type,
                    n.output[0],
                    dq_a.input[0],
                    bool(signed),
                    zp,
                    opt(dq_a, 1),
                    w,
                    opt(dq_w, 1),
                    opt(dq_w, 2),
                    attrs=_attrs(n),
                )
            )
        elif n.op_type in QOP_INPUTS:
            act, a_scale, a_zp, weight, w_scale, w_zp, y_scale, y_zp, bias = (
                opt(n, k) if k is not None else None for k in QOP_INPUTS[n.op_type]
            )
            w = inits.get(weight) if weight else None
            if w is None or act is None:
                continue
            src = producer.get(act)
            dynamic = src is not None and src.op_type == "DynamicQuantizeLinear"  # u8, whatever else says
            found.append(
                IntKernel(
                    name,
                    n.op_type,
                    n.output[0],
                    act,
                    not dynamic and bool(_dtype(a_zp, inits) == np.int8),
                    a_zp,
                    a_scale,
                    w,
                    w_scale,
                    w_zp,
                    out_scale=y_scale,  # none: the output is float (QGemm without y_scale) or int32
                    out_zp=y_zp,
                    attrs=_attrs(n),
                    bias=bias,
                )
            )
    return found


def _quantized_in_graph(q: Any, inits: dict) -> np.ndarray | None:
    """The integer weight a QuantizeLinear computes from a float initializer (quantization-aware training's export:
    float weight -> QuantizeLinear -> DequantizeLinear), as onnxruntime folds it before it runs: round half to even,
    plus the zero point, saturated to the type. None when the node is not that (or quantizes by blocks)."""
    if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 2:
        return None
    w, scale = inits.get(q.input[0]), inits.get(q.input[1])
    zp = inits.get(q.input[2]) if len(q.input) > 2 and q.input[2] else None
    attrs = _attrs(q)
    if w is None or scale is None or w.dtype.kind != "f" or attrs.get("block_size", 0):
        return None
    # the zero point's type, else opset 21's output_dtype (0: unset, uint8; 2: UINT8, 3: INT8; others are not 8-bit)
    dtype = (
        zp.dtype
        if zp is not None
        else {0: np.dtype(np.uint8), 2: np.dtype(np.uint8), 3: np.dtype(np.int8)}.get(int(attrs.get("output_dtype", 0)))
    )
    if dtype not in (np.int8, np.uint8):
        return None
    shape = [1] * w.ndim
    if scale.size > 1:  # per axis
        shape[int(attrs.get("axis", 1)) % w.ndim] = -1
    info = np.iinfo(dtype)
    q_w = np.rint(w.astype(np.float32) / scale.astype(np.float32).reshape(shape))
    if zp is not None:
        q_w = q_w + (zp.astype(np.float32).reshape(shape) if zp.size > 1 else zp.astype(np.float32))
    return np.clip(q_w, info.min, info.max).astype(dtype)


def reduction_matrix(k: IntKernel) -> np.ndarray:
    """The weight as [K, N] in the order the kernel reduces over: a Conv's patch is (kh, kw, channel), as
    onnxruntime's NHWC int8 convolution packs it; a Gemm with transB is transposed."""
    w = k.weight
    if k.op in CONVS:
        m = w.shape[0]
        return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, m)) if w.ndim == 4 else w.reshape(m, -1).T
    if k.op in GEMMS and k.attrs.get("transB", 0):
        return w.T
    return w


def saturating_pairs(a_u8: np.ndarray, w_s8: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """A [M, K] of u8 values times W [K, N] of s8 values as VPMADDUBSW + VPMADDWD compute it: adjacent
    products along K added in pairs and saturated to int16, then summed in int32. Returns (saturated
    accumulator, exact accumulator, number of pair sums that saturated), the accumulators as int64."""
    a = np.asarray(a_u8, np.int64)
    w = np.asarray(w_s8, np.int64)
    if a.shape[1] % 2:
        a = np.concatenate([a, np.zeros((a.shape[0], 1), np.int64)], axis=1)
        w = np.concatenate([w, np.zeros((1, w.shape[1]), np.int64)])
    sat, exact, count = np.zeros((a.shape[0], w.shape[1]), np.int64), np.zeros((a.shape[0], w.shape[1]), np.int64), 0
    rows = max(1, CHUNK // max(1, (a.shape[1] // 2) * w.shape[1]))
    for s in range(0, a.shape[0], rows):
        pair = a[s : s + rows, 0::2, None] * w[None, 0::2] + a[s : s + rows, 1::2, None] * w[None, 1::2]
        clipped = np.clip(pair, *INT16)
        count += int(np.count_nonzero(clipped != pair))
        sat[s : s + rows], exact[s : s + rows] = clipped.sum(1), pair.sum(1)
    return sat, exact, count


def _as_u8(a: np.ndarray, signed: bool) -> np.ndarray:
    return a.astype(np.int64) + 128 if signed else a.astype(np.int64)


def _signed(k: IntKernel, act: np.ndarray) -> bool:
    """Whether the kernel's activation is s8: its own type where it is an integer array, else as the graph says."""
    return act.dtype == np.int8 if act.dtype.kind in "iu" else k.act_signed


def _patches(x: np.ndarray, k: IntKernel, pad_value: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """im2col for a 2-D convolution, patches ordered (kh, kw, channel): [N*OH*OW, kh*kw*C] and (N, OH, OW)."""
    kh, kw = k.weight.shape[2:]
    sh, sw = k.attrs.get("strides", [1, 1])
    dh, dw = k.attrs.get("dilations", [1, 1])
    pads = k.attrs.get("pads", [0, 0, 0, 0])
    if k.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise NotImplementedError("auto_pad SAME_*")
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=pad_value)
    n, c, h, w = xp.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[
                :, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw
            ].transpose(0, 2, 3, 1)
    return cols.reshape(n * oh * ow, -1), (n, oh, ow)


def accumulators(k: IntKernel, act: np.ndarray, zp_u8: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """The raw u8 x s8 accumulators of this kernel on its integer activation, saturated and exact, shaped like the
    node's output (NCHW for a Conv), and how many pair sums saturated. `zp_u8`: the activation's zero point as the
    kernel sees it (u8), which is what a convolution pads with. Zero points are not taken out: the kernel corrects
    for them after the sums, so they do not change which pairs saturate."""
    a = _as_u8(act, _signed(k, act))
    if k.op in CONVS:
        if k.weight.ndim != 4 or act.ndim != 4:
            raise NotImplementedError(f"{k.weight.ndim - 2}-D convolution")
        group = int(k.attrs.get("group", 1))
        m = k.weight.shape[0]
        sats, exacts, saturated = [], [], 0
        for g in range(group):
            cg, mg = a.shape[1] // group, m // group
            sub = IntKernel(
                k.name,
                k.op,
                k.output,
                k.act,
                False,
                None,
                None,
                k.weight[g * mg : (g + 1) * mg],
                None,
                None,
                attrs=k.attrs,
            )
            cols, (n, oh, ow) = _patches(a[:, g * cg : (g + 1) * cg], sub, zp_u8)
            sat, exact, c = saturating_pairs(cols, reduction_matrix(sub))
            sats.append(sat.reshape(n, oh, ow, mg))
            exacts.append(exact.reshape(n, oh, ow, mg))
            saturated += c
        nchw = (0, 3, 1, 2)
        return np.concatenate(sats, -1).transpose(nchw), np.concatenate(exacts, -1).transpose(nchw), saturated
    if k.op in GEMMS and k.attrs.get("transA", 0):
        a = a.T
    lead = a.shape[:-1]
    sat, exact, c = saturating_pairs(a.reshape(-1, a.shape[-1]), reduction_matrix(k))
    return sat.reshape(*lead, -1), exact.reshape(*lead, -1), c


def _per_output(v: np.ndarray, k: IntKernel, like_weight: bool) -> np.ndarray:
    """A per-output-channel value (a weight's zero point or scale, a bias) shaped to broadcast against the weight
    (`like_weight`) or against the node's output (NCHW for a Conv, the last axis for a matrix product)."""
    v = np.asarray(v)
    if v.size <= 1:
        return v.reshape(())
    if k.op in CONVS:
        return v.reshape(-1, 1, 1, 1) if like_weight else v.reshape(-1, 1, 1)
    if like_weight and k.op in GEMMS and k.attrs.get("transB", 0):
        return v.reshape(-1, 1)
    return v


def centered_accumulators(
    k: IntKernel, act: np.ndarray, zp_u8: int, w_zp: np.ndarray | None, raw: np.ndarray | None = None
) -> np.ndarray:
    """The exact integer the node scales to its output: the sum of (activation - its zero point) x (weight - its
    zero point), shaped like the node's output. A convolution's padding holds the zero point: it adds nothing.
    `raw`: the exact accumulators `accumulators` gave (activations as u8, zero points in): with weights of zero
    point 0 (symmetric, as int8 weights are quantized) every output took zp_u8 x its weights' sum, padding included,
    and that is taken out of them; else the sums are worked out again."""
    if raw is not None and (w_zp is None or not np.any(w_zp)):
        return raw - zp_u8 * _per_output(reduction_matrix(k).astype(np.int64).sum(0), k, like_weight=False)
    a = _as_u8(act, _signed(k, act)) - zp_u8
    w = k.weight.astype(np.int64)
    if w_zp is not None and np.any(w_zp):
        w = w - _per_output(w_zp, k, like_weight=True).astype(np.int64)
    return accumulators(replace(k, weight=w), a, 0)[1]


@dataclass
class Simulation:
    """The model's outputs with every saturating kernel emulated, and per kernel how many pair sums saturated."""

    outputs: dict[str, np.ndarray]
    exact: dict[str, np.ndarray]
    saturated: dict[str, int]
    pairs: dict[str, int]
    skipped: dict[str, str]
    propagated: bool = True  # each kernel emulated downstream of the ones before (else on its unsaturated inputs)


def _session(model: Any, threads: int = 1) -> Any:
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )  # the exact float path: no fused int8 kernel
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _elem(arr: np.ndarray) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(arr.dtype)


def _cut(model: Any, replaced: dict[str, np.ndarray]) -> Any:
    """The model with the nodes producing `replaced` removed, their outputs fed as graph inputs instead."""
    from onnx import helper

    m = type(model)()
    m.CopyFrom(model)
    keep = [n for n in m.graph.node if not any(o in replaced for o in n.output)]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m.graph.input.extend(helper.make_tensor_value_info(name, _elem(v), None) for name, v in replaced.items())
    return m


def _fetch(model: Any, feeds: dict, replaced: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """`names` (intermediate tensors too) computed with `replaced` fed in place of the nodes that produce them."""
    from onnx import shape_inference

    m = _cut(model, replaced)
    inferred = shape_inference.infer_shapes(m)
    types = {v.name: v.type for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    declared = {o.name for o in m.graph.output}
    for name in names:
        if name not in declared:
            out = m.graph.output.add()
            out.name = name
            if name in types:
                out.type.CopyFrom(types[name])
            # else left untyped for onnxruntime to infer: shape inference does not type what onnxruntime's own
            # (com.microsoft) ops make, and a guessed type that is not the node's stops the session from loading
    values = _session(m).run(names, {**feeds, **replaced})
    return dict(zip(names, values, strict=True))


def _value(name: str | None, inits: dict, fetched: dict) -> np.ndarray | None:
    if name is None:
        return None
    return inits[name] if name in inits else fetched.get(name)


def _node_output(
    k: IntKernel,
    exact_out: np.ndarray,
    delta: np.ndarray,
    inits: dict,
    fetched: dict,
    act: np.ndarray,
    zp_u8: int,
    raw: np.ndarray | None = None,
) -> np.ndarray:
    """The node's output with the accumulator error added, in the node's own output type. A quantized output is
    requantized from the whole accumulator where the error moved it: the exact output is clipped to its type (a fused
    Relu is a clip at the zero point), so adding the error to a clipped value would not give the saturated one."""
    if k.op in ("ConvInteger", "MatMulInteger"):
        return (exact_out.astype(np.int64) + delta).astype(exact_out.dtype)
    a_scale = np.asarray(_value(k.act_scale, inits, fetched), np.float64)
    w_scale = _per_output(np.asarray(_value(k.weight_scale, inits, fetched), np.float64), k, like_weight=False)
    scale = a_scale * w_scale * float(k.attrs.get("alpha", 1.0))
    if k.op in QDQ_KERNELS or k.out_scale is None:  # a float output (QDQ, MatMulIntegerToFloat, QGemm without y_scale)
        return (exact_out.astype(np.float64) + delta * scale).astype(exact_out.dtype)
    moved = delta != 0
    if not moved.any():
        return exact_out
    w_zp = _value(k.weight_zp, inits, fetched)
    acc = centered_accumulators(k, act, zp_u8, None if w_zp is None else np.asarray(w_zp), raw) + delta
    bias = _value(k.bias, inits, fetched)
    if bias is not None:
        b = np.asarray(bias, np.int64)
        acc = acc + (b if b.ndim > 1 else _per_output(b, k, like_weight=False))
    y_scale = float(np.asarray(_value(k.out_scale, inits, fetched)))
    y_zp = int(np.asarray(_value(k.out_zp, inits, fetched))) if k.out_zp else 0
    info = np.iinfo(exact_out.dtype)
    q = np.clip(np.rint(acc * scale / y_scale) + y_zp, info.min, info.max)
    return np.where(moved, q, exact_out).astype(exact_out.dtype)


PROPAGATE_MAX = 16  # kernels emulated one after the other (a run of the model each); beyond, in one pass


def simulate(
    path: Path, feeds: dict[str, np.ndarray], only: list[str] | None = None, propagate: bool | None = None
) -> Simulation:
    """Run the model at `path` on `feeds` as an x86 CPU without VNNI would: each kernel that can saturate
    (or those named in `only`) emulated in turn on its real integer inputs, downstream of the ones before.
    That takes a run of the model per kernel; with more than PROPAGATE_MAX of them (or `propagate=False`) each
    is emulated on its unsaturated inputs, all from one run, and the model run once more with every one replaced."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    risky = [k for k in kernels(model) if (k.name in only if only is not None else k.can_saturate)]
    outputs = [o.name for o in model.graph.output]
    exact = _fetch(model, feeds, {}, outputs)
    propagate = len(risky) <= PROPAGATE_MAX if propagate is None else propagate
    replaced: dict[str, np.ndarray] = {}
    saturated, pairs, skipped = {}, {}, {}
    once: dict[str, np.ndarray] = {}
    if not propagate:
        names = {n for k in risky for n in (k.act, k.output, k.act_scale, k.act_zp) if n and n not in inits}
        once = _fetch(model, feeds, {}, sorted(names))
    for k in risky:
        wanted = [n for n in (k.act, k.output, k.act_scale, k.act_zp) if n and n not in inits]
        fetched = _fetch(model, feeds, replaced, wanted) if propagate else once
        act = fetched[k.act]
        zp_raw = _value(k.act_zp, inits, fetched)
        zp_u8 = (
            int(np.asarray(zp_raw).astype(np.int64).ravel()[0]) + (128 if _signed(k, act) else 0)
            if zp_raw is not None
            else 0
        )
        try:
            sat, raw, count = accumulators(k, act, zp_u8)
        except NotImplementedError as e:
            skipped[k.name] = str(e)
            continue
        delta = sat - raw
        saturated[k.name] = count
        pairs[k.name] = int(delta.size * ((reduction_matrix(k).shape[0] + 1) // 2))
        replaced[k.output] = _node_output(k, fetched[k.output], delta, inits, fetched, act, zp_u8, raw)
    outs = _fetch(model, feeds, replaced, outputs) if replaced else exact
    return Simulation(outs, exact, saturated, pairs, skipped, propagate)


def kernel_summary(path: Path) -> list[dict]:
    """Each integer kernel as plain values (picklable, for the worker): name, op, kind, weight range, worst pair."""
    import onnx

    return [
        {
            "name": k.name,
            "op": k.op,
            "kind": k.kind,
            "weight_range": k.weight_range,
            "worst_pair": k.worst_pair(),
            "can_saturate": k.can_saturate,
        }
        for k in kernels(onnx.load(str(path)))
    ]


def run_with_config(
    path: Path, feeds: dict[str, np.ndarray], config: dict[str, str], threads: int = 1
) -> dict[str, np.ndarray]:
    """The model run by onnxruntime with session config entries (session.x64quantprecision=1), optimizations on."""
    from model_checks.backends.onnx.runtime import onnxruntime

    ort = onnxruntime()

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    for key, value in config.items():
        so.add_session_config_entry(key, value)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))
