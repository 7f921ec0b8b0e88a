"""Keras models (`.keras`, `.h5` through tf-keras) and TensorFlow SavedModel directories: loader, runner,
inspect. TensorFlow is imported only inside them, with Keras 2 (tf-keras) selected first."""
