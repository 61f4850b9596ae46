"""Feature maps: what every layer outputs for a batch of images, all layers in one forward pass.

Zeiler & Fergus (2014), "Visualizing and Understanding Convolutional Networks"; seed 001 shows
layer-wise InceptionV3 maps and reads empty or input-like maps as a sign of a badly sized layer.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..core.graph import Tap, activations_fn, map_batches
from ..core.images import to_batch
from ..core.layers import iter_layers, layer_paths, resolve_layers, spatial_layer_paths


def feature_maps(
    model: keras.Model,
    images,
    layers=None,
    *,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
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
        output, i.e. the feature maps proper (nested models themselves are left out: their inner
        layers are listed). Pass ``"all"`` for every layer.
    preprocess : callable, optional
        Applied to the batch inside the graph before the model (e.g. a normalisation).
    batch_size : int, optional
        Images per forward pass (default 32); memory is bounded by one chunk of activations.

    Returns
    -------
    dict
        ``{layer path: float32 array (N, ...)}`` in model order.
    """
    x = to_batch(images, model)
    paths = _select(model, layers)
    tap = Tap(capture=tuple(paths), preprocess=preprocess)
    fn = activations_fn(model, tap, x)
    maps = map_batches(fn, [x], batch_size)
    return {p: np.asarray(maps[p], dtype=np.float32) for p in paths}


def _select(model: keras.Model, layers) -> list[str]:
    if layers is None:
        paths = spatial_layer_paths(model)
        if not paths:
            raise ValueError(
                f"model {model.name!r} has no layer with a 4-D output; "
                f"pass layers= (one of {layer_paths(model)}) or layers='all'"
            )
        return paths
    if isinstance(layers, str) and layers == "all":
        return [p for p, layer in iter_layers(model) if not isinstance(layer, keras.Model)]
    order = {p: i for i, p in enumerate(layer_paths(model))}
    return sorted(resolve_layers(model, layers), key=order.__getitem__)
