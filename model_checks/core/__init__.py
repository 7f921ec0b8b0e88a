"""The library core: artifacts, discovery, the model pool, inputs, references, metrics and results. Works without pytest."""
