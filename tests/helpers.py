"""Tiny Keras models with hand-set weights for known-answer tests (shared; add, don't change)."""

from __future__ import annotations

import keras
import numpy as np


def conv_model(kernel, bias=None, *, activation=None, input_shape=(8, 8, 1), name="conv"):
    """``Input -> Conv2D`` with ``kernel`` ``(kh, kw, c_in, c_out)`` and ``bias`` set by hand."""
    kernel = np.asarray(kernel, np.float32)
    bias = np.zeros(kernel.shape[-1], np.float32) if bias is None else np.asarray(bias, np.float32)
    inp = keras.Input(input_shape)
    conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], activation=activation, name=name)
    model = keras.Model(inp, conv(inp), name=f"{name}_model")
    conv.set_weights([kernel, bias])
    return model


def small_cnn(input_shape=(12, 12, 1), num_classes=3, *, name="small_cnn"):
    """A flat functional CNN: conv, pool, conv, flatten, dense (random weights)."""
    inp = keras.Input(input_shape)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    out = keras.layers.Dense(num_classes, activation="softmax", name="dense")(h)
    return keras.Model(inp, out, name=name)


def sequential_cnn(input_shape=(12, 12, 1), num_classes=3):
    """The same stack as :func:`small_cnn` as a ``keras.Sequential``."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_classes, activation="softmax", name="dense"),
        ],
        name="seq_cnn",
    )


def nested_cnn(input_shape=(12, 12, 1), num_classes=3):
    """A backbone model used as a layer: inner layers are addressed ``"backbone/conv"``."""
    inner_in = keras.Input(input_shape)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inner_in)
    h = keras.layers.Conv2D(5, 3, strides=2, name="conv_b")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    inp = keras.Input(input_shape)
    y = backbone(inp)
    y = keras.layers.Conv2D(3, 1, activation="relu", name="head_conv")(y)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    out = keras.layers.Dense(num_classes, activation="softmax", name="out")(y)
    return keras.Model(inp, out, name="nested_cnn")


def random_images(n=6, shape=(12, 12, 1), seed=0):
    """Float32 images in [0, 1] from a fixed seed."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def linear_model(weights):
    """``score_k = sum(w[..., k] * x)``: no bias, no softmax; gradient x input is exact."""
    weights = np.asarray(weights, np.float32)
    inp = keras.Input(weights.shape[:3])
    dense = keras.layers.Dense(weights.shape[3], use_bias=False)
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)), name="linear")
    dense.set_weights([weights.reshape(-1, weights.shape[3])])
    return model


class Count(keras.layers.Layer):
    """Identity that counts its calls and the images it sees (at run time, inside graphs)."""

    def build(self, shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x):
        self.calls.assign_add(1.0)
        self.seen.assign_add(keras.ops.cast(keras.ops.shape(x)[0], "float32"))
        return x


def counted_cnn(shape=(12, 12, 1)):
    """:func:`small_cnn` behind a :class:`Count` layer; returns ``(model, count)``."""
    inp = keras.Input(shape)
    count = Count(name="count")
    inner = small_cnn(shape)
    return keras.Model(inp, inner(count(inp)), name="counted"), count
