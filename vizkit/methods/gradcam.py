"""Grad-CAM and Grad-CAM++: class activation maps from the gradients at a convolution layer (or
at a token layer of a vision transformer, read as its patch grid)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.graph import ClassScore, Tap, compiled, forward, image_spec, map_batches
from ..core.layers import has_area, resolve_layer
from ..core.targets import prepare
from ..core.tokens import GRID_ARGS, check_grid_args, default_map_layer, infer_grid, layer_grid


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
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
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
        Layer with a 4-D ``(N, h, w, k)`` output, or a token layer ``(N, T, k)`` of a vision
        transformer (read as its ``(N, h, w, k)`` patch grid, prefix tokens dropped); None finds
        the last convolution layer whose map is larger than 1x1 (a 1x1 layer warns: its map is
        one flat value), or in a transformer the input of the last attention layer.
    plus_plus : bool
        Use the Grad-CAM++ weights.
    logits : bool
        Score the logit rather than the softmax probability.
    preprocess : callable or None
        Applied to the images inside the graph before the model.
    batch_size : int or None
        Images per compiled call (default 32, up to 128 for small images).
    relu : bool
        Keep only positive evidence (the paper's ReLU), then divide by the maximum; False keeps
        the sign and rescales min..max to 0..1.
    token_grid : (h, w), optional
        Patch grid of a token layer when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.

    Returns
    -------
    ndarray, float32, ``(N, H, W)`` in [0, 1], bilinearly upsampled (half-pixel centres) from
    the layer's ``(h, w)`` grid. An all-zero map stays zero.

    Raises
    ------
    ValueError
        When the layer's output is neither 4-D nor a token grid (the message names the layer
        and its shape, or ``token_grid``/``prefix_tokens`` for an ambiguous token layer), or for
        a bad target or images.
    """
    grid_args = check_grid_args(token_grid, prefix_tokens)
    path = default_map_layer(model) if layer is None else resolve_layer(model, layer)[0]
    obj = resolve_layer(model, path)[1]
    _check_rank(path, obj, grid_args)
    if not has_area(obj):
        warnings.warn(
            f"layer {path!r} has a 1x1 map, so its Grad-CAM is one flat value with no location; "
            f"pick a layer with a larger map (default: {default_map_layer(model)!r})",
            stacklevel=2,
        )
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    tap = Tap(capture=(path,), logits=p.tap.logits, preprocess=p.tap.preprocess)
    fn = _cam_fn(model, tap, bool(plus_plus), grid_args, p.x)
    cams = map_batches(fn, [p.x, p.aux], p.batch_size)
    if relu:
        cams = np.maximum(cams, 0.0)
    size = p.x.shape[1:3]
    up = tf.image.resize(cams[..., None], size, method="bilinear").numpy()[..., 0]
    return _rescale(up, relu)


def _check_rank(path: str, layer: keras.layers.Layer, grid_args) -> None:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return  # not built symbolically (subclassed models): checked when the graph is traced
    if len(shape) == 3:
        layer_grid(layer, token_grid=grid_args[0], prefix_tokens=grid_args[1], path=path)
    elif len(shape) != 4:
        raise ValueError(_rank_message(path, shape))


def _rank_message(path: str, shape) -> str:
    return (
        f"layer {path!r} has output shape {shape}; Grad-CAM needs a 4-D (N, H, W, C) feature "
        "map or an (N, T, C) token layer: pass layer= naming a convolution, pooling or "
        f"transformer token layer (and {GRID_ARGS} for tokens that form no square grid)"
    )


def _cam_fn(model: keras.Model, tap: Tap, plus_plus: bool, grid_args, example: np.ndarray):
    """Compiled ``f(x, aux) -> CAM (N, h, w)`` before ReLU and upsampling."""
    (path,) = tap.capture

    def make():
        def fn(x, aux):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs, captured = forward(model, x, tap)
                score = ClassScore()(outputs, captured, aux)
            act = captured[path]
            if act.shape.rank not in (3, 4):
                raise ValueError(_rank_message(path, tuple(act.shape)))
            grad = tape.gradient(score, act)
            if grad is None:
                raise ValueError(f"the class score does not depend on layer {path!r}")
            if act.shape.rank == 3:  # transformer tokens: the patch tokens on their grid
                grid = infer_grid(
                    act.shape[1],
                    token_grid=grid_args[0],
                    prefix_tokens=grid_args[1],
                    layer=f"layer {path!r}",
                )
                act, grad = grid.to_grid(act), grid.to_grid(grad)
            weights = _plus_plus_weights(act, grad) if plus_plus else tf.reduce_mean(grad, (1, 2))
            return tf.einsum("nhwk,nk->nhw", act, weights)

        return fn, (image_spec(example), tf.TensorSpec((None,), tf.int32))

    return compiled(model, ("gradcam", tap, plus_plus, grid_args), make)


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
