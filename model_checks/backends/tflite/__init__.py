"""TFLite (LiteRT) flatbuffers: loader, runner, facts, timing. Run by `ai_edge_litert`'s interpreter, which
imports no TensorFlow; a `.tflite` file carries no Python, so loading is safe by default, except for models
whose Flex (TensorFlow) or custom ops need code from outside the runtime."""
