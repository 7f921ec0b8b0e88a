"""OpenVINO: runs OpenVINO IR (`.xml` with its `.bin`) and ONNX files on its CPU plugin, as a second runtime beside
onnxruntime. Imported only when an artifact's format or `runtimes:` asks for it."""

from __future__ import annotations

from model_checks.backends.registry import Framework

FRAMEWORK = Framework(
    name="OpenVINO",
    formats=("openvino",),
    suffixes={".xml": "openvino"},
    family="openvino",
    extra="model-checks[openvino]",
    modules=("openvino",),
    runtime={"openvino": "openvino"},
    reference_model=False,  # an IR is gated as an artifact; references are the models it was converted from
)
