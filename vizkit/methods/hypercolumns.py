"""Hypercolumns: per-pixel stacks of feature maps from several layers, upsampled to one grid.

Hariharan et al. (2015), "Hypercolumns for Object Segmentation and Fine-grained Localization";
seed 001 (5.x, model visualisation) upsamples chosen InceptionV3 maps bilinearly to the input size
and shows their channel average as one image.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.graph import Tap, compiled, forward, image_spec, map_batches
from ..core.images import to_batch
from ..core.layers import iter_layers, output_shape, resolve_layers, spatial_layer_paths


def hypercolumns(
    model: keras.Model,
    images,
    layers,
    size: tuple[int, int] | None = None,
    *,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    average: bool = False,
) -> np.ndarray:
    """Hypercolumn of every pixel: the chosen layers' activations upsampled and stacked.

    Parameters
    ----------
    model : keras.Model
    images : array_like, shape (N, H, W[, C]) or (H, W[, C])
        uint8 (scaled to [0, 1]) or float, converted as ``model`` expects.
    layers : str, int, Layer or list of them
        Layers with 4-D ``(N, h, w, c)`` outputs, bilinearly resized (half-pixel centres, as
        ``cv2.resize`` with ``INTER_LINEAR``); layers with 2-D ``(N, c)`` outputs (dense layers)
        are repeated over every pixel, as in the paper. Stacked in the order given. ``None``
        means every layer with a 4-D output.
    size : (H, W), optional
        Output grid; defaults to the input images' height and width.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    batch_size : int, optional
        Images per forward pass (default 32).
    average : bool
        Return the mean over the stacked channels instead, shape (N, H, W) (seed 001's figure).

    Returns
    -------
    ndarray, float32
        ``(N, H, W, C_total)`` with ``C_total`` the sum of the layers' channel counts, or
        ``(N, H, W)`` when ``average`` is true.
    """
    x = to_batch(images, model)
    chosen = spatial_layer_paths(model) if layers is None else resolve_layers(model, layers)
    paths = _check_layers(model, chosen)
    out_size = _check_size(size, x.shape[1:3])
    tap = Tap(capture=tuple(paths), preprocess=preprocess)

    def make():
        def fn(batch):
            captured = forward(model, batch, tap)[1]
            stack = tf.concat([_upsample(captured[p], out_size) for p in paths], axis=-1)
            return tf.reduce_mean(stack, axis=-1) if average else stack

        return fn, (image_spec(x),)

    fn = compiled(model, ("hypercolumns", tap, out_size, bool(average)), make)
    return np.asarray(map_batches(fn, [x], batch_size), dtype=np.float32)


def hypercolumn_average(model: keras.Model, images, layers, size=None, **options) -> np.ndarray:
    """Mean hypercolumn image ``(N, H, W)``: :func:`hypercolumns` with ``average=True``."""
    return hypercolumns(model, images, layers, size, average=True, **options)


# --------------------------------------------------------------------------------------------
def _upsample(act: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    if act.shape.rank == 2:
        return tf.tile(act[:, None, None, :], (1, size[0], size[1], 1))
    return tf.image.resize(act, size, method="bilinear", antialias=False)


def _check_layers(model: keras.Model, paths: list[str]) -> list[str]:
    layers = dict(iter_layers(model))
    for p in paths:
        shape = output_shape(layers[p])
        rank = None if shape is None else len(shape)
        if rank not in (2, 4):
            raise ValueError(
                f"layer {p!r} has no (N, h, w, c) or (N, c) output (rank {rank}); "
                "hypercolumns need convolution, pooling or dense layers"
            )
    return paths


def _check_size(size, default) -> tuple[int, int]:
    if size is None:
        return int(default[0]), int(default[1])
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W) with two positive ints, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be (H, W) with two positive ints, got {size!r}")
    return h, w
