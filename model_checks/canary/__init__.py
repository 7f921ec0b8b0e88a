"""The runtime-upgrade canary: every artifact's cases under the pinned runtime and a candidate release, in separate
workers, and whether bumping the pin would change a verdict (`model-checks canary onnxruntime==X ROOT`)."""
