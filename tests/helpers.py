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
    """Float32 images in [0, 1] from a fixed seed (a fresh generator: no state shared between
    tests, so a test's inputs do not depend on which tests ran before it)."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# -- float32 tolerances -----------------------------------------------------------------------------
# TensorFlow computes in float32, and oneDNN picks its matmul and convolution kernels by the CPU's
# vector width (SSE4.1, AVX2, AVX-512) and by the shapes involved (a batch of 1 or of 64), so the
# same sum of n terms is added up in another order on another machine or in another call. Each
# float32 addition rounds with a relative error of at most u = eps32 / 2, so in any order a sum
# of n terms lies within (n - 1) u sum|terms| of the exact sum (Higham, "Accuracy and Stability
# of Numerical Algorithms", 2nd ed., eq. 4.4); two evaluations in different orders, or one
# against an exact (float64) reference, are at most (n - 1) eps32 sum|terms| apart. The products
# feeding the sum add one more rounding each, and a chain of layers adds the rounding of every
# layer (with weights of order one the relative errors add): count n as the sum of the fan-ins
# along the chain. ``f32_tol`` is that bound times a small factor: a few n * eps32 * s. Nothing
# smaller is portable; anything much larger would let real bugs (a lost term, a wrong window, a
# stray factor) through, and those are many orders of magnitude above it.
#
# Exact equality is right only where the code guarantees it: integer outputs and indices,
# copies, cached results, the same compiled call on the same input (same shapes, same kernels),
# values that are exactly zero because every term is zero, and x / x == 1 in IEEE arithmetic.
EPS32 = float(np.finfo(np.float32).eps)  # 2**-23 ~ 1.19e-7
# The size of the sums inside the small Glorot-initialised test nets on [0, 1] images: their
# activations and logits are a few units at most (fan-in n, weights of about 1 / sqrt(n)).
RANDOM_NET_SCALE = 4.0


def f32_tol(n_terms: int, scale: float, factor: float = 4.0) -> float:
    """Absolute tolerance for two float32 evaluations of a sum of ``n_terms`` terms.

    ``scale`` is the size of the sums: the sum of the absolute values of the terms, which for
    terms of one sign is the size of the result. For a difference of two such sums (a logit
    drop, an attribution), ``scale`` is the size of the sums, not of their difference.
    """
    if n_terms < 1 or not np.isfinite(scale) or scale < 0:
        raise ValueError(f"need n_terms >= 1 and a finite scale >= 0, got {n_terms}, {scale}")
    return float(factor * n_terms * EPS32 * scale)


def chain_terms(model, upto=None) -> int:
    """``n_terms`` for :func:`f32_tol` along ``model`` up to layer ``upto`` (name, inclusive).

    The sum of the fan-ins of the layers with a kernel (a convolution's ``kh * kw * c_in``, a
    dense layer's inputs) in model order, nested models included.
    """
    total = 0
    for layer in _flat_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            total += int(np.prod(kernel.shape[:-1]))
        if layer.name == upto:
            return max(total, 1)
    if upto is not None:
        raise ValueError(f"no layer {upto!r} in {model.name!r}")
    return max(total, 1)


def _flat_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        yield layer


def assert_close_f32(actual, expected, *, n_terms: int, scale=None, factor=4.0, err_msg=""):
    """``actual`` equals ``expected`` to within :func:`f32_tol` (absolute, elementwise).

    ``scale`` defaults to the largest ``|expected|``, which is the size of the sums only when
    no cancellation happens in them; pass it explicitly otherwise.
    """
    expected = np.asarray(expected, np.float64)
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    atol = f32_tol(n_terms, scale, factor)
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected, rtol=0, atol=atol, err_msg=err_msg
    )


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
