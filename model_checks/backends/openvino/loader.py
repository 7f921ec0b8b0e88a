"""Loading a model into OpenVINO safely: an ONNX file passes the ONNX backend's checks (content sniffed, external
data inside the root); an IR's `.xml` is plain XML without a DTD, and every weight it names lies inside its `.bin`,
which sits beside it inside the root. Only then does OpenVINO read anything. No extension (custom-op library) is
ever loaded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from model_checks.core.errors import ArtifactLoadError, UnsafePathError
from model_checks.core.requires import require
from model_checks.safety.paths import check_regular_file, resolve_inside, stand_in_problem
from model_checks.safety.sniff import sniff

MAX_XML_BYTES = 256 * 1024**2
# What the f32 equivalence runs under: the CPU plugin computes in bf16 by default where the CPU has AMX (and in
# f16 on some ARM cores), which is a different model from the one being gated.
DEFAULT_PRECISION = "f32"


def openvino() -> Any:
    return require("openvino", "openvino", "running a model on OpenVINO")


def is_ir(path: Path) -> bool:
    return path.suffix.lower() == ".xml"


def ir_weights(xml: Path) -> Path:
    return xml.with_suffix(".bin")


def check_ir(xml: Path, root: Path) -> tuple[Any, Path | None]:
    """The IR's parsed XML tree and its weights file, after the checks; refuses a DTD (entity expansion) and a
    weight that reaches outside the `.bin`."""
    import xml.etree.ElementTree as ET

    display = xml.name
    check_regular_file(xml, display, MAX_XML_BYTES)
    head = xml.read_bytes()
    if sniff(xml) not in ("text",) or not head.lstrip().startswith(b"<"):
        raise ArtifactLoadError(f"{display}: not an OpenVINO IR (an .xml file of text starting with '<')")
    if re.search(rb"<!(DOCTYPE|ENTITY)", head, re.IGNORECASE):
        raise UnsafePathError(
            f"{display}: the XML declares a DTD or entities; an OpenVINO IR has none, and entities can "
            "expand without bound or name files outside the artifact"
        )
    try:
        tree = ET.fromstring(head)
    except ET.ParseError as e:
        raise ArtifactLoadError(f"{display}: not well-formed XML ({e})") from None
    if tree.tag != "net":
        raise ArtifactLoadError(f"{display}: the XML's root element is <{tree.tag[:40]}>, not an OpenVINO IR's <net>")
    ranges = [
        (d.get("offset"), d.get("size"), layer.get("name", "?"))
        for layer in tree.iter("layer")
        if layer.get("type") == "Const"
        for d in layer.iter("data")
        if d.get("offset") is not None
    ]
    if not ranges:
        return tree, None
    weights = resolve_inside(root, xml.parent, ir_weights(xml).name, f"{display}: weights")
    size = check_regular_file(weights, f"{display}: weights")
    if (stand_in := stand_in_problem(root, weights)) is not None:
        raise ArtifactLoadError(f"{display}: weights: {weights.name} {stand_in}")
    for offset, length, name in ranges:
        try:
            o, n = int(offset), int(length or 0)
        except ValueError:
            raise UnsafePathError(f"{display}: Const '{name[:80]}': offset/size are not integers") from None
        if o < 0 or n < 0 or o + n > size:
            raise UnsafePathError(
                f"{display}: Const '{name[:80]}' reads bytes {o}..{o + n} outside {weights.name} ({size} bytes)"
            )
    return tree, weights


def read_model(path: Path, root: Path) -> Any:
    """The ov.Model of `path` (IR or ONNX), read after the safety checks."""
    if is_ir(path):
        _, weights = check_ir(path, root)
        ov = openvino()
        try:
            return ov.Core().read_model(str(path), str(weights) if weights else None)
        except Exception as e:
            raise ArtifactLoadError(f"{path.name}: OpenVINO cannot read the IR: {str(e)[:300]}") from None
    from model_checks.backends.onnx.loader import graph_of

    # content sniffed, external data proven inside the root; parsed without keeping the weights' bytes, and a large
    # file once for the runner's interface too (graph_of)
    graph_of(path, root)
    ov = openvino()
    try:
        return ov.Core().read_model(str(path))
    except Exception as e:
        raise ArtifactLoadError(f"{path.name}: OpenVINO cannot read the ONNX model: {str(e)[:300]}") from None
