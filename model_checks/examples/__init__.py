"""Example artifacts, rebuilt deterministically from scikit-learn's digits by `python -m model_checks.examples
artifacts` (`make artifacts`) with the producers: a PyTorch CNN and a Keras model, each in the variants
users ask for, each packaged with a measured manifest whose reference is the family's fp32 model."""

FAMILIES = ("torch", "keras", "sklearn", "transformer")  # what `make artifacts` builds, in order
