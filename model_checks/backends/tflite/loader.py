"""Loading a TFLite model safely: the file is judged by its FlatBuffer identifier (`TFL3` at bytes 4..8), its
operator codes are read with a small bounds-checked reader (no runtime needed, so the parent process can
judge trust before any worker starts), and the model is opened with `ai_edge_litert.interpreter.Interpreter`.

A model whose ops are all builtins carries no code and loads untrusted. Flex ops (TensorFlow "select" ops,
custom code `Flex<Op>`) need TensorFlow's Flex delegate and custom ops a registration from a native library:
both are code outside the runtime, refused unless trusted. Trusted, Flex ops run through TensorFlow's Flex
delegate library where it can be loaded (`libtensorflowlite_flex.so` on the library path: neither the
ai-edge-litert nor the tensorflow wheel ships it), else through model-checks' Python Flex delegate (flex.py),
which runs each Flex op with the TensorFlow installed here; LiteRT runs every builtin op either way.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from model_checks.core.errors import ArtifactLoadError, MissingDependencyError, runtime_error_text
from model_checks.safety.paths import check_regular_file

IDENTIFIER = b"TFL3"
MAX_BYTES = 2 * 1024**3  # a flatbuffer addresses 2 GiB; larger models keep weights outside and are not read here
FLEX_PREFIX = "Flex"
FLEX_LIBRARY = "libtensorflowlite_flex.so"
EXTRA = "model-checks[tflite]"


def is_tflite(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == IDENTIFIER


# -- a minimal FlatBuffer reader: the Model table's operator_codes, nothing else ---------------------------
class _Buf:
    def __init__(self, data: bytes, name: str):
        self.data, self.name = data, name

    def _bad(self, what: str) -> ArtifactLoadError:
        return ArtifactLoadError(f"{self.name}: not a readable TFLite flatbuffer ({what})")

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise self._bad(f"offset {pos} outside the file")
        return struct.unpack_from("<I", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        return struct.unpack_from("<i", self.data, pos)[0] if 0 <= pos <= len(self.data) - 4 else self.u32(pos)

    def field(self, table: int, index: int) -> int | None:
        """The absolute position of field `index` of the table at `table`, or None where it is absent."""
        vtable = table - self.i32(table)
        if vtable < 0 or vtable + 4 > len(self.data):
            raise self._bad("a vtable outside the file")
        size = struct.unpack_from("<H", self.data, vtable)[0]
        slot = 4 + 2 * index
        if slot + 2 > size or vtable + slot + 2 > len(self.data):
            return None
        off = struct.unpack_from("<H", self.data, vtable + slot)[0]
        return table + off if off else None

    def indirect(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> tuple[int, int]:
        start = self.indirect(pos)
        n = self.u32(start)
        if n > (len(self.data) - start) // 4:
            raise self._bad(f"a vector of {n} elements longer than the file")
        return start + 4, n

    def string(self, pos: int) -> str:
        start, n = self.indirect(pos), 0
        n = self.u32(start)
        if start + 4 + n > len(self.data):
            raise self._bad("a string longer than the file")
        return self.data[start + 4 : start + 4 + n].decode("utf-8", "replace")


def read_model(path: Path) -> bytes:
    """The file's bytes, after checking it is a regular file inside the cap that holds a TFLite model."""
    check_regular_file(path, path.name, MAX_BYTES)
    data = path.read_bytes()
    _require_identifier(path, data)
    return data


def _require_identifier(path: Path, data: Any) -> None:
    if not is_tflite(data[:8]):
        from model_checks.safety.sniff import sniff_bytes

        raise ArtifactLoadError(
            f"{path.name}: the file holds {sniff_bytes(data[:16])} data, not a TFLite model "
            f"(no FlatBuffer identifier {IDENTIFIER.decode()} at bytes 4..8; judged by its content)"
        )


def operator_codes(data: bytes, name: str = "model") -> list[tuple[int, str | None]]:
    """(builtin code, custom code or None) for each of the model's operator codes, in the file's order."""
    buf = _Buf(data, name)
    root = buf.indirect(0)
    field = buf.field(root, 1)  # Model.operator_codes
    if field is None:
        return []
    start, n = buf.vector(field)
    codes = []
    for i in range(n):
        table = buf.indirect(start + 4 * i)
        deprecated = buf.field(table, 0)
        builtin = buf.field(table, 3)
        custom = buf.field(table, 1)
        code = struct.unpack_from("<i", data, builtin)[0] if builtin is not None and builtin + 4 <= len(data) else 0
        if deprecated is not None and deprecated < len(data):
            code = max(code, struct.unpack_from("<b", data, deprecated)[0])  # the int8 field older files fill
        codes.append((code, buf.string(custom) if custom is not None else None))
    return codes


CUSTOM_CODE = 32  # BuiltinOperator.CUSTOM


def code_ops(data: bytes, name: str = "model") -> tuple[list[str], list[str]]:
    """(Flex ops, other custom ops) the model uses, by the names its operator codes give them."""
    customs = [c for code, c in operator_codes(data, name) if code == CUSTOM_CODE and c is not None]
    flex = sorted({c for c in customs if c.startswith(FLEX_PREFIX)})
    return flex, sorted(set(customs) - set(flex))


def trust_reason(path: Path) -> str | None:
    """Why loading this TFLite model would run code from outside the runtime (Flex or custom ops), or None."""
    import mmap

    from model_checks.safety.text import printable

    # mapped, not read: the parent judges trust before any worker starts, and a model may be large
    if check_regular_file(path, path.name, MAX_BYTES) < 8:
        read_model(path)  # refused, with what the file holds
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _require_identifier(path, data)
        flex, custom = code_ops(data, path.name)  # type: ignore[arg-type]
    parts = []
    if flex:
        parts.append(
            f"Flex (TensorFlow) ops {', '.join(printable(o) for o in flex)}, "
            "which run TensorFlow kernels through its Flex delegate"
        )
    if custom:
        parts.append(
            f"custom ops {', '.join(printable(o) for o in custom)}, "
            "whose kernels come from a native library registered at load time"
        )
    return "it uses " + " and ".join(parts) if parts else None


# -- the runtime ------------------------------------------------------------------------------------------
def litert() -> Any:
    """`ai_edge_litert.interpreter`, or a sentence naming the extra to install."""
    try:
        from ai_edge_litert import interpreter
    except ModuleNotFoundError as e:
        raise MissingDependencyError(f"checking tflite artifacts needs {e.name}: pip install '{EXTRA}'") from None
    return interpreter


def litert_version() -> str:
    import importlib.metadata as md

    return md.version("ai-edge-litert")


class FlexRun:
    """How a trusted model's Flex ops run: the delegate handed to LiteRT, and the sentence the runner's note
    states. TensorFlow's own Flex delegate library where one can be loaded (a user who built it), else
    model-checks' Python Flex delegate (flex.py), which runs each Flex op with the TensorFlow installed here."""

    def __init__(self, path: Path, flex: list[str]):
        import ctypes

        from model_checks.safety.text import printable

        ops = ", ".join(printable(o) for o in flex)
        try:
            # opened by ctypes first: LiteRT's Delegate, failing to load a library, leaves an object whose
            # finalizer raises (an unraisable exception in whatever code the garbage collector interrupts)
            ctypes.CDLL(FLEX_LIBRARY)
        except OSError as e:
            self.native_why = runtime_error_text(e)[:200]
        else:
            try:
                self.delegate: Any = litert().load_delegate(FLEX_LIBRARY)
            except (OSError, ValueError, RuntimeError) as e:
                raise ArtifactLoadError(
                    f"{path.name}: trusted, but {FLEX_LIBRARY} (found on the library path, and preferred for its "
                    f"Flex ops {ops}) does not load as a LiteRT delegate: {runtime_error_text(e)[:200]}"
                ) from None
            self.note = f"Flex ops {ops} run by TensorFlow's Flex delegate ({FLEX_LIBRARY})"
            return
        from model_checks.backends.keras.loader import keras_modules
        from model_checks.backends.tflite.flex import PythonFlexDelegate

        try:
            tf, _ = keras_modules()
        except MissingDependencyError as e:
            raise ArtifactLoadError(
                f"{path.name}: trusted, but its Flex ops {ops} need TensorFlow, and neither TensorFlow's Flex "
                f"delegate ({FLEX_LIBRARY}: {self.native_why}) nor TensorFlow is available here: {e}"
            ) from None
        self.delegate = PythonFlexDelegate(tf)
        self.note = f"Flex ops {ops} run by TensorFlow {tf.__version__} through model-checks' Python Flex delegate"

    def error(self) -> str | None:
        """What failed inside the Python delegate's callbacks (the runtime only says a node failed)."""
        return getattr(self.delegate, "error", None)

    def clear(self) -> None:
        if hasattr(self.delegate, "error"):
            self.delegate.error = None


def check_io_quantization(data: bytes) -> None:
    """Each quantized input and output read from the flatbuffer and checked before the runtime sees it (a zero
    point out of range only makes XNNPACK fail to prepare some node): a refusal names the tensor."""
    from ai_edge_litert import schema_py_generated as schema

    from model_checks.backends.tflite.facts import quant_params

    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if isinstance(v, int)}
    model = schema.Model.GetRootAs(data, 0)
    if not model.SubgraphsLength():
        return
    sub = model.Subgraphs(0)
    names: dict[int, str] = {}
    if model.SignatureDefsLength() == 1:
        sig = model.SignatureDefs(0)
        for t in [
            *(sig.Inputs(j) for j in range(sig.InputsLength())),
            *(sig.Outputs(j) for j in range(sig.OutputsLength())),
        ]:
            names[t.TensorIndex()] = (t.Name() or b"").decode("utf-8", "replace")
    for idx in [*sub.InputsAsNumpy().tolist(), *sub.OutputsAsNumpy().tolist()]:
        tensor = sub.Tensors(idx)
        q = tensor.Quantization()
        dtype = types.get(tensor.Type(), "")
        if q is None or not q.ScaleLength() or dtype not in ("int8", "uint8", "int16"):
            continue
        zeros = q.ZeroPointAsNumpy() if q.ZeroPointLength() else ()
        quant_params(
            names.get(idx) or (tensor.Name() or b"").decode("utf-8", "replace"),
            {"dtype": dtype, "quantization_parameters": {"scales": q.ScaleAsNumpy(), "zero_points": zeros}},
        )


def open_interpreter(path: Path, threads: int | None = None, xnnpack: bool = True, allocate: bool = True) -> Any:
    """The interpreter `open_model` opens (facts and mutants need no more)."""
    return open_model(path, threads, xnnpack, allocate)[0]


def open_model(
    path: Path, threads: int | None = None, xnnpack: bool = True, allocate: bool = True
) -> tuple[Any, FlexRun | None]:
    """(interpreter, how its Flex ops run or None): an allocated interpreter for the model at `path` (the caller
    checked trust first). `xnnpack`: LiteRT's default CPU delegate applied (on), or the builtin kernels alone
    (off). `allocate=False` reads the interface only: no kernel is prepared and no Flex delegate made, so a model
    whose Flex or custom ops cannot run here still shows its facts."""
    data = read_model(path)
    flex, custom = code_ops(data, path.name)
    try:
        check_io_quantization(data)
    except ArtifactLoadError as e:
        raise ArtifactLoadError(f"{path.name}: {e}") from None
    mod = litert()
    resolver = mod.OpResolverType.AUTO if xnnpack else mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    flex_run = FlexRun(path, flex) if flex and allocate else None
    try:
        interp = mod.Interpreter(
            model_content=data,
            num_threads=threads or None,
            experimental_op_resolver_type=resolver,
            experimental_delegates=[flex_run.delegate] if flex_run else None,
        )
        if allocate:
            interp.allocate_tensors()
    except Exception as e:
        text = runtime_error_text(e)
        if flex_run and flex_run.error():
            raise ArtifactLoadError(f"{path.name}: {flex_run.note}, and it failed: {flex_run.error()}") from None
        if custom and ("custom" in text.lower() or "registration" in text.lower() or any(c in text for c in custom)):
            raise ArtifactLoadError(
                f"{path.name}: trusted, but LiteRT has no kernel for its custom ops {', '.join(custom)}: the gate "
                f"registers no custom-op libraries ({text[:200]})"
            ) from None
        raise ArtifactLoadError(f"{path.name}: LiteRT cannot open the model ({text[:300]})") from None
    return interp, flex_run


def signature_io(interp: Any) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """(name, tensor details) of the inputs and outputs: the names of the model's one signature (the source
    model's names, as a Keras conversion keeps them), else the tensors' own names."""
    sigs = interp.get_signature_list()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    if len(sigs) == 1:
        key = next(iter(sigs))
        runner = interp.get_signature_runner(key)
        by_index = {d["index"]: d for d in (*ins, *outs)}
        sig_in, sig_out = runner.get_input_details(), runner.get_output_details()
        if all(d["index"] in by_index for d in (*sig_in.values(), *sig_out.values())):
            return (
                [(n, by_index[d["index"]]) for n, d in sig_in.items()],
                [(n, by_index[d["index"]]) for n, d in sig_out.items()],
            )
    return [(d["name"], d) for d in ins], [(d["name"], d) for d in outs]


def carries_code(fmt: str, path: Path) -> str | None:
    """The framework's `carries_code` (backends/registry.py): Flex or custom ops, judged on the file; None for a
    file that is not there yet (the loader refuses it with what is wrong)."""
    return trust_reason(path) if path.is_file() else None
