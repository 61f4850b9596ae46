"""Turning what users pass as images into the float32 NHWC batch a model expects."""

from __future__ import annotations

import keras
import numpy as np


def check_model(model) -> keras.Model:
    """``model`` itself if it is a Keras model (or layer), else a TypeError saying what to pass."""
    if not isinstance(model, keras.layers.Layer):
        hint = "; load a model file with models.load_model(path)" if isinstance(model, str) else ""
        raise TypeError(
            f"model must be a keras.Model, got {type(model).__name__}: {model!r:.80}{hint}"
        )
    return model


def model_input_shape(model: keras.Model) -> tuple[int | None, ...]:
    """``(H, W, C)`` of the model's (first) image input; ``None`` for free dimensions.

    Subclassed models have no symbolic inputs: once built (called on a batch), the shape they
    were built with is used.
    """
    check_model(model)
    try:
        inputs = model.inputs
    except AttributeError:  # an unbuilt Sequential, a subclassed model
        inputs = None
    if not inputs:
        built = _built_input_shape(model)
        if built is not None:
            return built
        raise ValueError(
            f"model {model.name!r} has no known input shape: build it first "
            "(call it once on a batch, or give its first layer an input_shape)"
        )
    if len(inputs) > 1:
        raise ValueError(
            f"model {model.name!r} has {len(inputs)} inputs; this method needs a single-image-input model "
            "(wrap the other inputs in a model that fixes them)"
        )
    shape = tuple(inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(
            f"model {model.name!r} takes inputs of shape {shape}; image methods need (H, W, C) inputs"
        )
    return shape


def to_batch(
    images,
    model: keras.Model | None = None,
    *,
    name: str = "images",
    allow_empty: bool = False,
    check_size: bool = True,
) -> np.ndarray:
    """Convert images to a float32 NHWC batch that fits ``model``.

    Accepts one image ``(H, W)`` or ``(H, W, C)`` or a batch ``(N, H, W[, C])``, uint8 (scaled to
    [0, 1]) or float (used as given). Grayscale images are repeated to 3 channels for an RGB model
    and RGB images converted to luminance for a 1-channel model. ``check_size=False`` skips the
    height/width check (for methods that tile images of any size).

    Raises
    ------
    TypeError
        For non-numeric (or complex) input, or a ``model`` that is not a Keras model.
    ValueError
        For the wrong rank, a ragged list, an empty batch, non-finite pixels, or a size or channel
        count the model cannot take.
    """
    arr = as_array(images, name)
    expected = model_input_shape(model) if model is not None else None
    channels = expected[2] if expected is not None else None
    arr = _to_nhwc(arr, channels, name)
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape}); pass at least one image")
    if 0 in arr.shape[1:]:
        raise ValueError(
            f"{name} has a zero-sized dimension: shape {arr.shape}; height, width and channels "
            "must be >= 1"
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        scaled = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if not np.all(np.isfinite(scaled)):
        bad = int(np.size(scaled) - np.count_nonzero(np.isfinite(scaled)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite pixel values (or values too large for "
            "float32); only finite pixel values are allowed: clean them before visualising"
        )
    if expected is not None:
        scaled = _match_channels(scaled, expected[2], name)
    if expected is not None and check_size:
        for axis, (got, want) in enumerate(zip(scaled.shape[1:3], expected[:2], strict=True)):
            if want is not None and got != want:
                dim = "height" if axis == 0 else "width"
                raise ValueError(
                    f"{name} have {dim} {got} but model {model.name!r} expects (H, W) = "
                    f"{tuple(expected[:2])}; resize the images first"
                )
    return scaled


def as_array(images, name: str = "images") -> np.ndarray:
    """``images`` as a real-valued NumPy array (any shape), or a clear error.

    Raises
    ------
    TypeError
        For strings, objects or complex numbers.
    ValueError
        For a ragged list of images of different sizes.
    """
    try:
        arr = np.asarray(images)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{name} must be an array of equally sized images, got a ragged "
            f"{type(images).__name__} of {len(images)} items"
        ) from None
    real = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if arr.dtype == object or not (real or arr.dtype == bool):
        raise TypeError(
            f"{name} must be a real numeric array (integer, float or bool), got dtype {arr.dtype}"
        )
    return arr


def _built_input_shape(model) -> tuple[int | None, ...] | None:
    """``(H, W, C)`` that a built subclassed model was built with, if it was one 4-D input."""
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if not getattr(model, "built", False) or len(shapes) != 1:
        return None
    shape = next(iter(shapes.values()))
    if not isinstance(shape, (tuple, list)) or len(shape) != 4:
        return None
    return tuple(None if s is None else int(s) for s in shape[1:])


def _to_nhwc(arr: np.ndarray, channels: int | None, name: str) -> np.ndarray:
    if arr.ndim == 2:
        return arr[None, :, :, None]
    if arr.ndim == 3:
        # (H, W, C) with a plausible channel count is one image; otherwise (N, H, W) grayscale.
        if arr.shape[-1] in (1, 3, 4) or (channels is not None and arr.shape[-1] == channels):
            return arr[None]
        return arr[..., None]
    if arr.ndim == 4:
        return arr
    raise ValueError(
        f"{name} must have shape (H, W), (H, W, C), (N, H, W) or (N, H, W, C); got shape {arr.shape}"
    )


def _match_channels(x: np.ndarray, channels: int | None, name: str) -> np.ndarray:
    have = x.shape[-1]
    if channels is None or have == channels:
        return x
    if have == 1:
        return np.repeat(x, channels, axis=-1)
    if have in (3, 4) and channels == 1:
        rgb = x[..., :3]
        return (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if have == 4 and channels == 3:
        return x[..., :3]
    raise ValueError(
        f"{name} have {have} channels but the model expects {channels}; pass {channels} "
        "channels (or 1 channel, which is repeated)"
    )
