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
from ..core.layers import iter_layers, output_shape, resolve_layers
from ..core.tokens import check_grid_args, grid_layer_paths, layer_grid


def hypercolumns(
    model: keras.Model,
    images,
    layers,
    size: tuple[int, int] | None = None,
    *,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    average: bool = False,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
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
        are repeated over every pixel, as in the paper; transformer token layers ``(N, T, c)``
        are read as their ``(N, h, w, c)`` patch grid. Stacked in the order given. ``None``
        means every layer with a 4-D output or a token grid.
    size : (H, W), optional
        Output grid; defaults to the input images' height and width.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model.
    batch_size : int, optional
        Images per forward pass (default 32).
    average : bool
        Return the mean over the stacked channels instead, shape (N, H, W) (seed 001's figure).
    token_grid : (h, w), optional
        Patch grid of token layers when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.

    Returns
    -------
    ndarray, float32
        ``(N, H, W, C_total)`` with ``C_total`` the sum of the layers' channel counts, or
        ``(N, H, W)`` when ``average`` is true.
    """
    x = to_batch(images, model)
    grid_args = check_grid_args(token_grid, prefix_tokens)
    if layers is None:
        chosen = grid_layer_paths(model, token_grid=grid_args[0], prefix_tokens=grid_args[1])
    else:
        chosen = resolve_layers(model, layers)
    grids = _check_layers(model, chosen, grid_args)
    paths = [p for p, _ in grids]
    out_size = _check_size(size, x.shape[1:3])
    tap = Tap(capture=tuple(paths), preprocess=preprocess)

    def make():
        def fn(batch):
            captured = forward(model, batch, tap)[1]
            maps = [captured[p] if g is None else g.to_grid(captured[p]) for p, g in grids]
            stack = tf.concat([_upsample(m, out_size) for m in maps], axis=-1)
            return tf.reduce_mean(stack, axis=-1) if average else stack

        return fn, (image_spec(x),)

    fn = compiled(model, ("hypercolumns", tap, out_size, bool(average), grids), make)
    return np.asarray(map_batches(fn, [x], batch_size), dtype=np.float32)


def hypercolumn_average(model: keras.Model, images, layers, size=None, **options) -> np.ndarray:
    """Mean hypercolumn image ``(N, H, W)``: :func:`hypercolumns` with ``average=True``."""
    return hypercolumns(model, images, layers, size, average=True, **options)


# --------------------------------------------------------------------------------------------
def _upsample(act: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    if act.shape.rank == 2:
        return tf.tile(act[:, None, None, :], (1, size[0], size[1], 1))
    return tf.image.resize(act, size, method="bilinear", antialias=False)


def _check_layers(model: keras.Model, paths: list[str], grid_args) -> tuple:
    """``((path, TokenGrid or None), ...)``; token layers get their grid."""
    layers = dict(iter_layers(model))
    out = []
    for p in paths:
        shape = output_shape(layers[p])
        rank = None if shape is None else len(shape)
        if rank not in (2, 3, 4):
            raise ValueError(
                f"layer {p!r} has no (N, h, w, c), (N, T, c) token or (N, c) output (rank "
                f"{rank}); hypercolumns need convolution, pooling, transformer or dense layers"
            )
        grid = layer_grid(layers[p], token_grid=grid_args[0], prefix_tokens=grid_args[1], path=p)
        out.append((p, grid))
    return tuple(out)


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
