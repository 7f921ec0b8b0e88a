"""The Keras family: a small channel-last CNN trained deterministically on the digits."""

from __future__ import annotations

from typing import Any

import numpy as np

from model_checks.producers.keras_convert import tensorflow

EPOCHS = 20
BATCH = 64


def train(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = EPOCHS) -> Any:
    """The model trained on (x NHWC, y) with fixed seeds and deterministic ops."""
    tf = tensorflow()
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            layers.Input((8, 8, 1), name="input"),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(10, name="logits"),
        ],
        name="digits_keras",
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-2), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0)
    return model
