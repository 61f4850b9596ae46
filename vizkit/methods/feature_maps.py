"""Feature maps: what every layer outputs for a batch of images, all layers in one forward pass.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks"; seed 001 shows
layer-wise InceptionV3 maps and reads empty or input-like maps as a sign of a badly sized layer.
Token layers of vision transformers come back as ``(N, h, w, D)`` patch grids
(:mod:`vizkit.core.tokens`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..core.graph import Tap, activations_fn, map_batches
from ..core.images import to_batch
from ..core.layers import iter_layers, layer_paths, resolve_layers
from ..core.tokens import check_grid_args, grid_layer_paths, layer_grid, try_layer_grid


def feature_maps(
    model: keras.Model,
    images,
    layers=None,
    *,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
) -> dict[str, np.ndarray]:
    """Activations of ``layers`` for ``images``, computed in one forward pass per chunk.

    Parameters
    ----------
    model : keras.Model
        Sequential, functional or nested (inner layers are addressed as ``"backbone/conv"``).
    images : array_like, shape (N, H, W[, C]) or (H, W[, C])
        uint8 (scaled to [0, 1]) or float (used as given), converted as ``model`` expects.
    layers : str, int, Layer or list of them, optional
        Layers to record. ``None`` (default) means every layer with a 4-D ``(N, H, W, C)``
        output or a token grid, i.e. the feature maps proper (nested models themselves are left
        out: their inner layers are listed). Pass ``"all"`` for every layer.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model (e.g. a normalisation).
    batch_size : int, optional
        Images per forward pass (default 32); memory is bounded by one chunk of activations.
    token_grid : (h, w), optional
        Patch grid of token layers (``(N, T, D)`` outputs) when it cannot be inferred.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens (dropped from the maps).

    Returns
    -------
    dict
        ``{layer path: float32 array (N, ...)}`` in model order. Token layers are ``(N, h, w,
        D)``: the patch tokens (prefix tokens dropped) on their grid. With ``layers="all"``,
        3-D layers whose tokens form no grid are returned as they are.

    Raises
    ------
    ValueError
        For a named 3-D layer whose patch grid is ambiguous (the message names ``token_grid``
        and ``prefix_tokens``).
    """
    x = to_batch(images, model)
    check_grid_args(token_grid, prefix_tokens)
    paths = _select(model, layers, token_grid, prefix_tokens)
    objects = dict(iter_layers(model))
    grid_of = layer_grid if not _every(layers) else try_layer_grid
    grids = {
        p: grid_of(objects[p], token_grid=token_grid, prefix_tokens=prefix_tokens) for p in paths
    }
    tap = Tap(capture=tuple(paths), preprocess=preprocess)
    fn = activations_fn(model, tap, x)
    maps = map_batches(fn, [x], batch_size)
    return {
        p: np.asarray(maps[p] if grids[p] is None else grids[p].to_grid(maps[p]), np.float32)
        for p in paths
    }


def _every(layers) -> bool:
    return isinstance(layers, str) and layers == "all"


def _select(model: keras.Model, layers, token_grid, prefix_tokens) -> list[str]:
    if layers is None:
        paths = grid_layer_paths(model, token_grid=token_grid, prefix_tokens=prefix_tokens)
        if not paths:
            raise ValueError(
                f"model {model.name!r} has no layer with a 4-D output or a token grid; "
                f"pass layers= (one of {layer_paths(model)}) or layers='all'"
            )
        return paths
    if _every(layers):
        return [p for p, layer in iter_layers(model) if not isinstance(layer, keras.Model)]
    order = {p: i for i, p in enumerate(layer_paths(model))}
    return sorted(resolve_layers(model, layers), key=order.__getitem__)
