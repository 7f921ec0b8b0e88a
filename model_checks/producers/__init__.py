"""Producers: make the artifacts the gate checks, and write manifests measured from them.

One module per concern, each importing its framework only inside the function that needs it:

- `torch_export`   PyTorch -> ONNX (TorchScript-based and torch.export-based exporters), checked first
- `torchscript`    trace / script to `.pt`, compared with eager; warns when a trace froze a branch
- `torch_precision` fp16 autocast and dynamic int8 `Linear` quantization, measured against fp32
- `calibration`    a CalibrationDataReader over arrays, an `.npz` or a generator
- `ort_quantize`   onnxruntime dynamic (int8/uint8) and static QDQ quantization, with pre-processing
- `fp16`           ONNX fp16 conversion (onnxconverter-common), optionally keeping fp32 I/O
- `optimize`       onnxoptimizer passes, outputs compared before the model is written
- `keras_convert`  Keras -> ONNX through tf2onnx in fp32, fp16, uint8 and int8
- `tflite_convert` Keras -> TFLite in float32, float16, dynamic range and int8 (calibrated, or through QAT),
                   run in LiteRT against Keras before writing
- `onnx_model`     the ONNXModel wrapper and the weight list of an ONNX model
- `measure`        latency and throughput of a runner, the sha256 of a file
- `package`        an artifact directory whose metadata.yaml is measured from the model
- `verify`         the one check before any producer writes: onnx.checker, onnxruntime, outputs against the source
- `onnx_graph`     graph repairs: topological order, Constant weights as initializers, opset upgrade
- `npz`, `progress` reproducible .npz files; progress bars on long steps
"""
