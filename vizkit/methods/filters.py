"""Learned weights as pictures: convolution kernels and dense/RBM weight vectors as image tiles.

Zeiler & Fergus (2014) and Krizhevsky et al. (2012) show first-layer kernels as small colour
images; for a dense layer (or an RBM) reading a flattened image, each unit's weight vector
reshaped to the image grid shows the "receptive field" template the unit matches (Hinton, 2006).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ..core.layers import iter_layers, resolve_layer

MODES = ("auto", "channels", "mean")
SCALES = ("filter", "symmetric")


def filters(
    model,
    layer: str | int | keras.layers.Layer | None = None,
    *,
    mode: str = "auto",
    scale: str = "filter",
    image_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Weights of ``layer`` as image tiles ``(n, kh, kw, c)`` in [0, 1].

    Parameters
    ----------
    model : keras.Model or ndarray or object with a 2-D ``weights`` array
        A Keras model, or a raw weight matrix of shape ``(n_visible, n_hidden)`` such as an RBM's
        ``weights`` (an RBM object itself is accepted too); one tile per hidden unit.
    layer : str, int, Layer or None
        A Conv1D/Conv2D/Conv2DTranspose/DepthwiseConv2D/SeparableConv2D (depthwise kernel) or
        Dense layer. ``None`` means the first layer that has a kernel. Ignored for a raw matrix.
    mode : {"auto", "channels", "mean"}
        How a kernel with ``c_in`` input channels becomes tiles. ``"channels"``: one grayscale
        tile per (filter, input channel) pair, ``n = n_filters * c_in`` ordered filter-major
        (tile ``f * c_in + i`` is channel ``i`` of filter ``f``). ``"mean"``: the kernel averaged
        over its input channels, ``n = n_filters``, ``c = 1``. ``"auto"`` (default) keeps the
        input channels as colour when ``c_in`` is 1 or 3 (first-layer RGB kernels in colour),
        and otherwise behaves like ``"mean"``.
    scale : {"filter", "symmetric"}
        ``"filter"`` (default): each filter (all its tiles and channels together, so colours keep
        their balance) is min-max rescaled to [0, 1]; a constant filter becomes 0.5.
        ``"symmetric"``: one scale for the whole layer, ``0.5 + w / (2 max|w|)``, so 0.5 means
        zero weight and tiles can be compared with each other.
    image_shape : tuple, optional
        ``(H, W)`` or ``(H, W, C)`` that a dense weight vector is reshaped to. By default it is the
        input of the ``Flatten`` feeding the layer, or a square grayscale (or RGB) image when the
        vector length allows it (784 -> 28 x 28 x 1).

    Returns
    -------
    ndarray, float32, shape (n, kh, kw, c), values in [0, 1]

    Raises
    ------
    ValueError
        For a layer without a kernel (the message lists the layers that have one), an unknown
        option, or a weight vector that cannot be reshaped to an image.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    kernel = _as_kernel(model, layer, image_shape)
    return _rescale(_tiles(kernel, mode), scale)


def channel_mixing(model, layer: str | int | keras.layers.Layer | None = None) -> np.ndarray:
    """The weights of a 1x1 convolution as its channel-mixing matrix ``(c_in, c_out)``.

    A 1x1 kernel has no spatial pattern to draw (each tile would be one flat pixel); what it
    does is mix channels: output channel ``j`` is ``sum_i w[i, j] * input_i``. Drawn as a heat map
    (:func:`vizkit.plot.plot_filters` on this matrix), rows are input channels and columns output
    channels (Lin, Chen & Yan, 2014, "Network in Network"; the ``*_project`` layers of
    MobileNetV2).

    Parameters
    ----------
    model : keras.Model or ndarray
        A model (with ``layer``) or a raw kernel of shape ``(1, 1, c_in, c_out)``.
    layer : str, int or Layer, optional
        A 1x1 convolution of ``model`` (see :func:`is_pointwise`).

    Returns
    -------
    ndarray, float32, shape (c_in, c_out)
        The raw weights (not rescaled: their sign and size matter).

    Raises
    ------
    ValueError
        When the kernel is not 1x1 (the message gives its size).
    """
    if isinstance(model, np.ndarray):
        kernel = np.asarray(model, np.float32)
    else:
        kernel = _as_kernel(model, layer, None)
    if kernel.ndim != 4 or kernel.shape[:2] != (1, 1):
        raise ValueError(
            f"channel_mixing needs a 1x1 convolution kernel (1, 1, c_in, c_out), got a kernel of "
            f"shape {kernel.shape}; draw larger kernels with filters()"
        )
    return np.asarray(kernel[0, 0], np.float32)


def is_pointwise(model: keras.Model, layer: str | int | keras.layers.Layer) -> bool:
    """True when ``layer`` is a 1x1 (pointwise) convolution: draw :func:`channel_mixing`."""
    obj = resolve_layer(model, layer)[1]
    if hasattr(obj, "depthwise_kernel"):  # depthwise 1x1: one scale per channel, no mixing
        return False
    kernel = _layer_kernel(obj)
    return kernel is not None and kernel.ndim == 4 and kernel.shape[:2] == (1, 1)


def kernel_layer_paths(model: keras.Model) -> list[str]:
    """Paths of every layer :func:`filters` can draw (convolutions and dense layers)."""
    return [path for path, lyr in iter_layers(model) if _layer_kernel(lyr) is not None]


# --------------------------------------------------------------------------------------------
def _as_kernel(model, layer, image_shape) -> np.ndarray:
    """The weights as a 4-D ``(kh, kw, c_in, n)`` array, whatever was passed."""
    matrix = _raw_matrix(model)
    if matrix is not None:
        return _dense_as_kernel(matrix, _image_shape(matrix.shape[0], image_shape, None))
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a keras.Model, a 2-D weight matrix (n_visible, n_hidden) or an object "
            f"with such a 'weights' array, got {type(model).__name__}"
        )
    if layer is None:
        paths = kernel_layer_paths(model)
        if not paths:
            raise ValueError(f"model {model.name!r} has no convolution or dense layer")
        layer = paths[0]
    path, obj = resolve_layer(model, layer)
    kernel = _layer_kernel(obj)
    if kernel is None:
        raise ValueError(
            f"layer {path!r} ({type(obj).__name__}) has no kernel to draw; "
            f"layers with kernels: {kernel_layer_paths(model)}"
        )
    if kernel.ndim == 2:
        return _dense_as_kernel(kernel, _image_shape(kernel.shape[0], image_shape, obj))
    return kernel


def _raw_matrix(model) -> np.ndarray | None:
    if isinstance(model, (keras.Model, keras.layers.Layer)):
        return None
    candidate = model
    if not isinstance(model, np.ndarray) and hasattr(model, "weights"):
        candidate = model.weights
    try:
        arr = np.asarray(candidate, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2:
        if isinstance(model, np.ndarray):
            raise ValueError(
                f"a raw weight matrix must be 2-D (n_visible, n_hidden), got shape {arr.shape}"
            )
        return None
    return arr


def _layer_kernel(layer) -> np.ndarray | None:
    """``(kh, kw, c_in, n)`` for convolutions, ``(n_in, n)`` for Dense, else None."""
    name = type(layer).__name__
    if isinstance(layer, keras.Model) or not getattr(layer, "built", False):
        return None
    if hasattr(layer, "depthwise_kernel"):
        # Depthwise (and the spatial half of separable) kernels: (kh, kw, c_in, multiplier);
        # every (channel, multiplier) pair is its own single-channel filter.
        k = np.asarray(layer.depthwise_kernel)
        kh, kw, cin, mult = k.shape
        return k.reshape(kh, kw, 1, cin * mult)
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return None
    k = np.asarray(kernel, dtype=np.float32)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return np.swapaxes(k, 2, 3)  # stored as (kh, kw, c_out, c_in)
    if k.ndim == 3 and "Conv" in name:
        return k[None]  # Conv1D (k, c_in, n) -> a 1 x k strip
    if k.ndim in (2, 4):
        return k
    return None


def _image_shape(length: int, image_shape, layer) -> tuple[int, int, int]:
    if image_shape is not None:
        try:
            shape = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"image_shape must be (H, W) or (H, W, C) with ints, got {image_shape!r}"
            ) from None
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) != 3 or math.prod(shape) != length:
            raise ValueError(
                f"image_shape {tuple(image_shape)} does not hold a weight vector of length {length}"
            )
        return shape
    flat_source = _flatten_input_shape(layer) if layer is not None else None
    if flat_source is not None and math.prod(flat_source) == length:
        return flat_source
    for channels in (1, 3):
        side = math.isqrt(length // channels)
        if side * side * channels == length:
            return (side, side, channels)
    raise ValueError(
        f"cannot tell which image a weight vector of length {length} belongs to; "
        "pass image_shape=(H, W) or (H, W, C)"
    )


def _flatten_input_shape(layer) -> tuple[int, int, int] | None:
    """``(H, W, C)`` feeding a Flatten right before ``layer``, if there is one."""
    try:
        source = layer.input._keras_history.operation
        if isinstance(source, keras.layers.Flatten):
            shape = tuple(source.input.shape[1:])
            return shape if len(shape) == 3 and None not in shape else None
    except (AttributeError, ValueError):
        return None
    return None


def _dense_as_kernel(matrix: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    # Flatten walks (H, W, C) in C order, so row r of the matrix is pixel (h, w, c).
    return matrix.reshape(*shape, matrix.shape[1])


def _tiles(kernel: np.ndarray, mode: str) -> np.ndarray:
    """(kh, kw, c_in, n) -> (n_tiles, kh, kw, c) for ``mode`` (before rescaling), grouped per filter."""
    cin = kernel.shape[2]
    per_filter = np.transpose(kernel, (3, 0, 1, 2)).astype(np.float32)  # (n, kh, kw, c_in)
    if mode == "auto":
        mode = "colour" if cin in (1, 3) else "mean"
    if mode == "colour":
        return per_filter[:, None]
    if mode == "mean":
        return per_filter.mean(axis=-1, keepdims=True)[:, None]
    return np.transpose(per_filter, (0, 3, 1, 2))[..., None]  # (n, c_in, kh, kw, 1)


def _rescale(groups: np.ndarray, scale: str) -> np.ndarray:
    """Rescale ``(n, tiles_per_filter, kh, kw, c)`` to [0, 1] and flatten the tile axis."""
    if scale == "symmetric":
        peak = float(np.max(np.abs(groups)))
        out = np.full_like(groups, 0.5) if peak == 0 else 0.5 + groups / (2.0 * peak)
    else:
        axes = tuple(range(1, groups.ndim))
        lo = groups.min(axis=axes, keepdims=True)
        span = groups.max(axis=axes, keepdims=True) - lo
        safe = np.where(span > 0, span, 1.0)
        out = np.where(span > 0, (groups - lo) / safe, 0.5)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out.reshape(-1, *out.shape[2:])
