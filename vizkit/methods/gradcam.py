"""Grad-CAM and Grad-CAM++: class activation maps from the gradients at a convolution layer."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.graph import ClassScore, Tap, compiled, forward, image_spec, map_batches
from ..core.layers import has_area, last_conv_layer, resolve_layer
from ..core.targets import prepare


def gradcam(
    model: keras.Model,
    images,
    target=None,
    *,
    layer: str | int | keras.layers.Layer | None = None,
    plus_plus: bool = False,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    relu: bool = True,
) -> np.ndarray:
    """Class activation map of the target class, upsampled to the input size.

    Grad-CAM (Selvaraju et al., 2017, arXiv:1610.02391) weights each channel ``k`` of a
    convolution layer's output ``A`` by its mean gradient ``mean_ij dS/dA_ijk`` and sums.
    Grad-CAM++ (Chattopadhay et al., 2018, arXiv:1710.11063) weights by
    ``sum_ij alpha_ijk relu(dS/dA_ijk)`` with
    ``alpha = g^2 / (2 g^2 + sum_ab A_abk g^3)``, ``g = dS/dA``: the paper's higher derivatives
    of ``exp(S)`` reduce to powers of ``g``, and the common ``exp(S)`` factor cancels in the
    normalisation, so it is never computed (no overflow for large logits).

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier.
    images : array_like
        ``(N, H, W[, C])`` or one image; uint8 is scaled to [0, 1].
    target : int, sequence of int or None
        Class per image; None uses each image's predicted class.
    layer : str, int, Layer or None
        Layer with a 4-D ``(N, h, w, k)`` output; None finds the last convolution layer whose
        map is larger than 1x1 (a 1x1 layer warns: its map is one flat value).
    plus_plus : bool
        Use the Grad-CAM++ weights.
    logits : bool
        Score the logit rather than the softmax probability.
    preprocess : callable or None
        Applied to the images inside the graph before the model.
    batch_size : int or None
        Images per compiled call (default 32).
    relu : bool
        Keep only positive evidence (the paper's ReLU), then divide by the maximum; False keeps
        the sign and rescales min..max to 0..1.

    Returns
    -------
    ndarray, float32, ``(N, H, W)`` in [0, 1], bilinearly upsampled (half-pixel centres) from
    the layer's ``(h, w)`` grid. An all-zero map stays zero.

    Raises
    ------
    ValueError
        When the layer's output is not 4-D (the message names the layer and its shape), or for
        a bad target or images.
    """
    path = last_conv_layer(model) if layer is None else resolve_layer(model, layer)[0]
    obj = resolve_layer(model, path)[1]
    _check_rank(path, obj)
    if not has_area(obj):
        warnings.warn(
            f"layer {path!r} has a 1x1 map, so its Grad-CAM is one flat value with no location; "
            f"pick a layer with a larger map (default: {last_conv_layer(model)!r})",
            stacklevel=2,
        )
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    tap = Tap(capture=(path,), logits=p.tap.logits, preprocess=p.tap.preprocess)
    cams = map_batches(_cam_fn(model, tap, bool(plus_plus), p.x), [p.x, p.aux], p.batch_size)
    if relu:
        cams = np.maximum(cams, 0.0)
    size = p.x.shape[1:3]
    up = tf.image.resize(cams[..., None], size, method="bilinear").numpy()[..., 0]
    return _rescale(up, relu)


def _check_rank(path: str, layer: keras.layers.Layer) -> None:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return  # not built symbolically (subclassed models): checked when the graph is traced
    if len(shape) != 4:
        raise ValueError(_rank_message(path, shape))


def _rank_message(path: str, shape) -> str:
    return (
        f"layer {path!r} has output shape {shape}; Grad-CAM needs a 4-D (N, H, W, C) feature "
        "map: pass layer= naming a convolution or pooling layer"
    )


def _cam_fn(model: keras.Model, tap: Tap, plus_plus: bool, example: np.ndarray):
    """Compiled ``f(x, aux) -> CAM (N, h, w)`` before ReLU and upsampling."""
    (path,) = tap.capture

    def make():
        def fn(x, aux):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs, captured = forward(model, x, tap)
                score = ClassScore()(outputs, captured, aux)
            act = captured[path]
            if act.shape.rank != 4:
                raise ValueError(_rank_message(path, tuple(act.shape)))
            grad = tape.gradient(score, act)
            if grad is None:
                raise ValueError(f"the class score does not depend on layer {path!r}")
            weights = _plus_plus_weights(act, grad) if plus_plus else tf.reduce_mean(grad, (1, 2))
            return tf.einsum("nhwk,nk->nhw", act, weights)

        return fn, (image_spec(example), tf.TensorSpec((None,), tf.int32))

    return compiled(model, ("gradcam", tap, plus_plus), make)


def _plus_plus_weights(act: tf.Tensor, grad: tf.Tensor) -> tf.Tensor:
    g2 = tf.square(grad)
    g3 = g2 * grad
    denom = 2.0 * g2 + tf.reduce_sum(act, axis=(1, 2), keepdims=True) * g3
    # Where the gradient vanishes alpha is 0/0; the paper's convention takes it as 0.
    alpha = tf.math.divide_no_nan(g2, denom)
    return tf.reduce_sum(alpha * tf.nn.relu(grad), axis=(1, 2))


def _rescale(maps: np.ndarray, relu: bool) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    low = np.zeros(len(maps), np.float32) if relu else flat.min(axis=1)
    span = flat.max(axis=1) - low
    span = np.where(span > 0, span, 1.0)
    out = (maps - low[:, None, None]) / span[:, None, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)
