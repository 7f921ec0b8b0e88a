"""Flex ops run by TensorFlow through a delegate written in Python over TFLite's C ABI (ctypes).

No wheel reachable ships TensorFlow's Flex delegate (`libtensorflowlite_flex.so`): neither ai-edge-litert nor
tensorflow. A TFLite model converted with SELECT_TF_OPS stores each TensorFlow op as a custom op named
`Flex<Op>` whose custom options are a FlexBuffer vector `[op name, serialized NodeDef]`. This delegate claims
those nodes, one node a kernel, and runs each one's NodeDef with TensorFlow (a one-op graph imported once,
called at every invoke); LiteRT keeps running every builtin op. It is used only for a trusted model (it runs
the TensorFlow ops the model names) and only in a worker, which may import TensorFlow then.

The structs below are those of `tensorflow/lite/core/c/common.h` (read at tensorflow/tensorflow
041716545c17d9b54fd25e42623e621476fbafd5; the header keeps them "semi-ABI stable": fields are only appended).
Only prefixes of the runtime's structs are read; the two this module hands to the runtime (TfLiteDelegate,
TfLiteRegistration) are padded with zeros, so a runtime whose struct grew reads zeros (null, "none") past the
fields declared here. No exception crosses the C boundary: a callback that fails returns kTfLiteError and
keeps its message, which the runner raises with the node and the op's name.
"""

from __future__ import annotations

import ctypes as C
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_checks.safety.text import printable

OK, ERROR = 0, 1
DYNAMIC = 4  # TfLiteAllocationType.kTfLiteDynamic
ALLOW_DYNAMIC_TENSORS = 1  # TfLiteDelegateFlags.kTfLiteDelegateFlagsAllowDynamicTensors
BUILTIN_CUSTOM = 32  # BuiltinOperator.CUSTOM
KERNEL_NAME = b"ModelChecksPythonFlexDelegate"
PAD = 256  # zero bytes after the structs handed to the runtime

# TfLiteType (c_api_types.h) -> numpy; string, resource and variant tensors have no flat numpy view
NUMPY_TYPES = {
    1: np.float32,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    8: np.complex64,
    9: np.int8,
    10: np.float16,
    11: np.float64,
    12: np.complex128,
    13: np.uint64,
    16: np.uint32,
    17: np.uint16,
}
TYPE_NAMES = {5: "string", 14: "resource", 15: "variant", 18: "int4", 19: "bfloat16"}


class IntArray(C.Structure):
    _fields_ = [("size", C.c_int)]  # followed by `size` ints

    def values(self) -> list[int]:
        return list((C.c_int * self.size).from_address(C.addressof(self) + C.sizeof(C.c_int)))


class QuantParams(C.Structure):
    _fields_ = [("scale", C.c_float), ("zero_point", C.c_int32)]


class Quantization(C.Structure):
    _fields_ = [("type", C.c_int), ("params", C.c_void_p)]


class Tensor(C.Structure):  # TfLiteTensor, whole: the context's `tensors` is an array of them
    _fields_ = [
        ("type", C.c_int),
        ("data", C.c_void_p),
        ("dims", C.POINTER(IntArray)),
        ("params", QuantParams),
        ("allocation_type", C.c_int),
        ("bytes", C.c_size_t),
        ("allocation", C.c_void_p),
        ("name", C.c_char_p),
        ("delegate", C.c_void_p),
        ("buffer_handle", C.c_int),
        ("data_is_stale", C.c_bool),
        ("is_variable", C.c_bool),
        ("quantization", Quantization),
        ("sparsity", C.c_void_p),
        ("dims_signature", C.c_void_p),
    ]


class Node(C.Structure):  # a prefix of TfLiteNode
    _fields_ = [
        ("inputs", C.POINTER(IntArray)),
        ("outputs", C.POINTER(IntArray)),
        ("intermediates", C.POINTER(IntArray)),
        ("temporaries", C.POINTER(IntArray)),
        ("user_data", C.c_void_p),
        ("builtin_data", C.c_void_p),
        ("custom_initial_data", C.c_void_p),
        ("custom_initial_data_size", C.c_int),
    ]


class Context(C.Structure):
    pass


class Registration(C.Structure):
    pass


class Delegate(C.Structure):
    pass


class DelegateParams(C.Structure):
    _fields_ = [
        ("delegate", C.POINTER(Delegate)),
        ("nodes_to_replace", C.POINTER(IntArray)),
        ("input_tensors", C.POINTER(IntArray)),
        ("output_tensors", C.POINTER(IntArray)),
    ]


P_CTX, P_NODE, P_REG = C.POINTER(Context), C.POINTER(Node), C.POINTER(Registration)
INIT = C.CFUNCTYPE(C.c_void_p, P_CTX, C.c_void_p, C.c_size_t)
FREE = C.CFUNCTYPE(None, P_CTX, C.c_void_p)
KERNEL = C.CFUNCTYPE(C.c_int, P_CTX, P_NODE)  # prepare and invoke
PREPARE = C.CFUNCTYPE(C.c_int, P_CTX, C.POINTER(Delegate))

Registration._fields_ = [
    ("init", INIT),
    ("free", FREE),
    ("prepare", KERNEL),
    ("invoke", KERNEL),
    ("profiling_string", C.c_void_p),
    ("builtin_code", C.c_int32),
    ("custom_name", C.c_char_p),
    ("version", C.c_int),
    ("registration_external", C.c_void_p),
    ("async_kernel", C.c_void_p),
    ("inplace_operator", C.c_uint64),
    ("_pad", C.c_char * PAD),
]
Delegate._fields_ = [
    ("data_", C.c_void_p),
    ("Prepare", PREPARE),
    ("CopyFromBufferHandle", C.c_void_p),
    ("CopyToBufferHandle", C.c_void_p),
    ("FreeBufferHandle", C.c_void_p),
    ("flags", C.c_int64),
    ("opaque_delegate_builder", C.c_void_p),
    ("_pad", C.c_char * PAD),
]
Context._fields_ = [
    ("tensors_size", C.c_size_t),
    ("GetExecutionPlan", C.CFUNCTYPE(C.c_int, P_CTX, C.POINTER(C.POINTER(IntArray)))),
    ("tensors", C.c_void_p),
    ("impl_", C.c_void_p),
    ("ResizeTensor", C.CFUNCTYPE(C.c_int, P_CTX, C.POINTER(Tensor), C.POINTER(IntArray))),
    ("ReportError", C.c_void_p),
    ("AddTensors", C.c_void_p),
    ("GetNodeAndRegistration", C.CFUNCTYPE(C.c_int, P_CTX, C.c_int, C.POINTER(P_NODE), C.POINTER(P_REG))),
    (
        "ReplaceNodeSubsetsWithDelegateKernels",
        C.CFUNCTYPE(C.c_int, P_CTX, Registration, C.POINTER(IntArray), C.POINTER(Delegate)),
    ),
    ("recommended_num_threads", C.c_int),
    ("GetExternalContext", C.c_void_p),
    ("SetExternalContext", C.c_void_p),
    ("allow_fp32_relax_to_fp16", C.c_bool),
    ("profiler", C.c_void_p),
    ("AllocatePersistentBuffer", C.c_void_p),
    ("AllocateBufferForEval", C.c_void_p),
    ("RequestScratchBufferInArena", C.c_void_p),
    ("GetScratchBuffer", C.c_void_p),
    # ResizeTensorExplicit and GetTensor follow; LiteRT leaves them null (TFLite Micro's), so they are not used
]


_LIBC = C.CDLL(None)
_LIBC.malloc.restype = C.c_void_p
_LIBC.malloc.argtypes = [C.c_size_t]


def owned_int_array(values: tuple[int, ...]) -> Any:
    """A TfLiteIntArray the runtime takes ownership of (ResizeTensor frees it with `free`): malloc'd from the
    C library the runtime links (ai-edge-litert's shared objects import malloc and free from glibc)."""
    n = len(values)
    ptr = _LIBC.malloc(C.sizeof(C.c_int) * (n + 1))
    if not ptr:
        raise MemoryError("malloc failed for a tensor shape")
    (C.c_int * (n + 1)).from_address(ptr)[:] = [n, *values]
    return C.cast(ptr, C.POINTER(IntArray))


def tensor_at(ctx: Any, index: int) -> Any:
    """The context's tensor `index` (a pointer): `tensors` is an array of whole TfLiteTensor structs."""
    c = ctx.contents
    if not 0 <= index < c.tensors_size:
        raise FlexError(f"tensor index {index} outside the context's {c.tensors_size} tensors")
    return C.cast(c.tensors + C.sizeof(Tensor) * index, C.POINTER(Tensor))


def check_layout(ctx: Any) -> None:
    """Refuse, before writing anything, a runtime whose TfLiteTensor is not the struct declared here: read at
    that stride, every tensor must show a known type and allocation type (a wrong stride reads other fields)."""
    c = ctx.contents
    for i in range(c.tensors_size):
        t = tensor_at(ctx, i).contents
        if not (0 <= t.type <= 19 and 0 <= t.allocation_type <= 8):
            raise FlexError(
                f"the runtime's TfLiteTensor is not the {C.sizeof(Tensor)}-byte struct this delegate reads (tensor "
                f"{i}: type {t.type}, allocation type {t.allocation_type}); it was written for ai-edge-litert 2.3"
            )


def int_array(values: list[int]) -> Any:
    """A TfLiteIntArray the runtime reads and does not keep (ReplaceNodeSubsetsWithDelegateKernels copies it)."""
    arr = (C.c_int * (len(values) + 1))(len(values), *values)
    return C.cast(arr, C.POINTER(IntArray)), arr


@dataclass
class FlexNode:
    """One Flex node: the TensorFlow op it names, its NodeDef, the tensors it reads and writes, and, once the
    kernel is initialised, the one-op TensorFlow function that runs it."""

    index: int
    op: str
    node_def: bytes
    inputs: list[int]
    outputs: list[int]
    fn: Any = None
    calls: int = field(default=0)


class FlexError(RuntimeError):
    pass


def tensorflow_says(e: BaseException) -> str:
    """TensorFlow's error without its graph-execution preamble, node brackets and advice: its first sentence."""
    skip = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.strip().startswith(skip)]
    text = " ".join(lines)
    first = text.split(". ", 1)[0]
    return (first if first.endswith(".") or first == text else first + ".")[:300] or type(e).__name__


def parse_custom_options(data: bytes) -> tuple[str, bytes]:
    """A Flex node's custom options: the FlexBuffer vector [op name, serialized NodeDef]."""
    from flatbuffers import flexbuffers

    root = flexbuffers.GetRoot(bytearray(data))
    vec = root.AsVector
    if len(vec) < 2:
        raise FlexError(f"its custom options hold {len(vec)} value(s), not [op name, NodeDef]")
    op, node_def = vec[0], vec[1]
    return op_bytes(op).decode("utf-8", "replace"), op_bytes(node_def)


def op_bytes(ref: Any) -> bytes:
    if ref.IsBlob:
        return bytes(ref.AsBlob)
    if ref.IsString:  # a FlexBuffer string is bytes with a length: the binary NodeDef, as stored
        return bytes(ref.AsStringBytes)
    raise FlexError("its NodeDef is neither a string nor a blob")


class PythonFlexDelegate:
    """A TfLiteDelegate whose kernels run each Flex node's TensorFlow op; handed to LiteRT's Interpreter as
    `experimental_delegates=[d]`, which only calls `_get_native_delegate_pointer()`."""

    def __init__(self, tf: Any):
        self.tf = tf
        # each subgraph's Prepare hands its own context: a node is known by (context, index) until its kernel is
        # made, then by its place in `kernels` (the kernel node's user_data, plus one: never null)
        self.pending: dict[tuple[int, int], FlexNode] = {}
        self.kernels: list[FlexNode] = []
        self.error: str | None = None  # the first failure inside a callback, raised by the runner
        self._keep: list[Any] = []
        self._prepare = PREPARE(self._guard_prepare)
        self._reg = Registration()
        self._reg.init = INIT(self._guard(self._init, None))
        self._reg.free = FREE(self._free)
        self._reg.prepare = KERNEL(self._guard(self._kernel_prepare, ERROR))
        self._reg.invoke = KERNEL(self._guard(self._invoke, ERROR))
        self._reg.builtin_code = BUILTIN_CUSTOM
        self._reg.custom_name = KERNEL_NAME
        self._reg.version = 1
        self._delegate = Delegate()
        self._delegate.Prepare = self._prepare
        self._delegate.flags = ALLOW_DYNAMIC_TENSORS

    def _get_native_delegate_pointer(self) -> int:
        return C.addressof(self._delegate)

    # -- the C boundary ---------------------------------------------------------------------------------
    def _fail(self, where: str, e: BaseException) -> None:
        if self.error is None:
            self.error = str(e) if isinstance(e, FlexError) else f"{where}: {type(e).__name__}: {e}"

    def _guard(self, fn: Any, on_error: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except BaseException as e:  # noqa: BLE001 - nothing may unwind through the runtime's C frames
                self._fail(getattr(fn, "__name__", "callback"), e)
                return on_error

        return call

    def _guard_prepare(self, ctx: Any, delegate: Any) -> int:
        try:
            return self._delegate_prepare(ctx)
        except BaseException as e:  # noqa: BLE001
            self._fail("the delegate's prepare", e)
            return ERROR

    # -- the delegate: claim every Flex node, one node a kernel ------------------------------------------
    def _delegate_prepare(self, ctx: Any) -> int:
        c = ctx.contents
        check_layout(ctx)
        plan_p = C.POINTER(IntArray)()
        if c.GetExecutionPlan(ctx, C.byref(plan_p)) != OK:
            raise FlexError("GetExecutionPlan failed")
        plan = plan_p.contents.values()  # copied: the runtime's array changes with the next call
        found: list[FlexNode] = []
        for index in plan:
            node_p, reg_p = P_NODE(), P_REG()
            if c.GetNodeAndRegistration(ctx, index, C.byref(node_p), C.byref(reg_p)) != OK:
                raise FlexError(f"GetNodeAndRegistration({index}) failed")
            reg = reg_p.contents
            name = reg.custom_name.decode("utf-8", "replace") if reg.custom_name else ""
            if reg.builtin_code != BUILTIN_CUSTOM or not name.startswith("Flex"):
                continue
            node = node_p.contents
            data = C.string_at(node.custom_initial_data, node.custom_initial_data_size)
            op, node_def = parse_custom_options(data)
            op = printable(op)  # the artifact's text, printed in messages
            found.append(FlexNode(index, op, node_def, node.inputs.contents.values(), node.outputs.contents.values()))
        for fx in found:
            self.pending[(C.addressof(c), fx.index)] = fx
            nodes, keep = int_array([fx.index])
            self._keep.append(keep)
            status = c.ReplaceNodeSubsetsWithDelegateKernels(ctx, self._reg, nodes, C.pointer(self._delegate))
            if status != OK:
                raise FlexError(f"ReplaceNodeSubsetsWithDelegateKernels failed for node {fx.index} ({fx.op})")
        return OK

    # -- the kernel: one Flex node -----------------------------------------------------------------------
    def _init(self, ctx: Any, buffer: int, length: int) -> int:
        params = C.cast(buffer, C.POINTER(DelegateParams)).contents
        index = params.nodes_to_replace.contents.values()[0]
        fx = self.pending.pop((C.addressof(ctx.contents), index))
        try:
            fx.fn = self._function(ctx, fx)
        except FlexError as e:
            raise FlexError(f"node {fx.index} ({fx.op}): {e}") from None
        except Exception as e:
            raise FlexError(
                f"node {fx.index} ({fx.op}): TensorFlow cannot build the op: {tensorflow_says(e)}"
            ) from None
        self.kernels.append(fx)
        return len(self.kernels)  # the node's user_data

    def _free(self, ctx: Any, buffer: int) -> None:
        return None

    def _kernel_prepare(self, ctx: Any, node: Any) -> int:
        fx = self.kernels[node.contents.user_data - 1]
        for t in fx.outputs:
            tensor = tensor_at(ctx, t).contents
            if tensor.allocation_type != DYNAMIC:  # shapes are known at invoke: TensorFlow computes them
                tensor.data = None  # an arena pointer is the arena's, not ours to free
                tensor.allocation_type = DYNAMIC
        return OK

    def _invoke(self, ctx: Any, node: Any) -> int:
        fx = self.kernels[node.contents.user_data - 1]
        args = [self._read(tensor_at(ctx, t).contents, fx, t) for t in fx.inputs]
        try:
            results = fx.fn(*args)
        except Exception as e:
            raise FlexError(f"node {fx.index} ({fx.op}): TensorFlow failed: {tensorflow_says(e)}") from None
        if len(results) != len(fx.outputs):
            raise FlexError(f"node {fx.index} ({fx.op}): {len(results)} outputs for {len(fx.outputs)} tensors")
        for t, value in zip(fx.outputs, results):
            self._write(ctx, t, np.asarray(value), fx)
        fx.calls += 1
        return OK

    def _read(self, tensor: Any, fx: FlexNode, t: int) -> np.ndarray:
        dtype = self._numpy_type(tensor, fx, t)
        shape = tensor.dims.contents.values() if tensor.dims else []
        n = int(np.prod(shape, dtype=np.int64))
        if n == 0:
            return np.zeros(shape, dtype)
        return (
            np.ctypeslib.as_array(C.cast(tensor.data, C.POINTER(C.c_uint8)), (tensor.bytes,)).view(dtype).reshape(shape)
        )

    def _write(self, ctx: Any, t: int, value: np.ndarray, fx: FlexNode) -> None:
        c = ctx.contents
        tensor_p = tensor_at(ctx, t)
        tensor = tensor_p.contents
        dtype = np.dtype(self._numpy_type(tensor, fx, t))
        if value.dtype != dtype:
            raise FlexError(f"node {fx.index} ({fx.op}): TensorFlow gave {value.dtype} for a {dtype} tensor")
        value = np.ascontiguousarray(value)
        if c.ResizeTensor(ctx, tensor_p, owned_int_array(value.shape)) != OK:
            raise FlexError(f"node {fx.index} ({fx.op}): resizing output tensor {t} to {value.shape} failed")
        tensor = tensor_p.contents
        if tensor.bytes != value.nbytes or (value.nbytes and not tensor.data):
            raise FlexError(
                f"node {fx.index} ({fx.op}): output tensor {t} holds {tensor.bytes} bytes, not {value.nbytes}"
            )
        if value.nbytes:
            C.memmove(tensor.data, value.ctypes.data, value.nbytes)

    def _numpy_type(self, tensor: Any, fx: FlexNode, t: int) -> Any:
        dtype = NUMPY_TYPES.get(tensor.type)
        if dtype is None:
            what = TYPE_NAMES.get(tensor.type, f"type {tensor.type}")
            raise FlexError(
                f"node {fx.index} ({fx.op}): tensor {t} is a {what} tensor, which this delegate does not pass"
            )
        return dtype

    # -- TensorFlow -------------------------------------------------------------------------------------
    def _function(self, ctx: Any, fx: FlexNode) -> Any:
        """The NodeDef as a one-op graph: a Placeholder per input (typed as the TFLite tensor), the op reading
        them in order, imported once and pruned to a callable."""
        tf = self.tf
        from tensorflow.core.framework import graph_pb2, node_def_pb2

        nd = node_def_pb2.NodeDef.FromString(fx.node_def)
        data_inputs = [i for i in nd.input if not i.startswith("^")]
        if len(data_inputs) != len(fx.inputs):
            raise FlexError(f"its NodeDef reads {len(data_inputs)} inputs, the TFLite node {len(fx.inputs)}")
        graph = graph_pb2.GraphDef()
        specs = []
        for i, t in enumerate(fx.inputs):
            dtype = tf.as_dtype(np.dtype(self._numpy_type(tensor_at(ctx, t).contents, fx, t)))
            ph = graph.node.add(name=f"input_{i}", op="Placeholder")
            ph.attr["dtype"].type = dtype.as_datatype_enum
            specs.append(tf.TensorSpec(None, dtype))
        op = graph.node.add()
        op.CopyFrom(nd)
        op.name = "flex_op"
        op.device = ""
        del op.input[:]
        op.input.extend(f"input_{i}" for i in range(len(fx.inputs)))
        outputs = [f"flex_op:{j}" for j in range(len(fx.outputs))]

        def body(*args: Any) -> Any:
            feeds = {f"input_{i}:0": a for i, a in enumerate(args)}
            return tf.compat.v1.import_graph_def(graph, input_map=feeds, return_elements=outputs, name="")

        return tf.compat.v1.wrap_function(body, specs)
