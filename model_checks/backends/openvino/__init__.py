"""OpenVINO: runs OpenVINO IR (`.xml` with its `.bin`) and ONNX files on its CPU plugin, as a second runtime beside
onnxruntime. Imported only when an artifact's format or `runtimes:` asks for it."""
