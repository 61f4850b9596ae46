"""DeepDream: amplify whatever chosen layers see in an image, at several scales."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from .. import optimize as opt
from ..core.checks import non_negative_int, positive_int, positive_number
from ..core.images import as_array, model_input_shape, to_batch
from ..core.layers import resolve_layers
from ..optimize.core import capped_steps, gradient_of


def deepdream(
    model: keras.Model,
    image,
    layers,
    *,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    step_size: float = 0.01,
    tile_size: int = 512,
    jitter: int | None = None,
    weights: Sequence[float] | None = None,
    preprocess: Callable | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Gradient ascent on the (weighted) mean activation of ``layers``, over an octave pyramid.

    The image is processed from the smallest octave to the full size; at each octave the detail
    added so far is upscaled and added back to the downscaled original. Gradients are computed
    tile by tile (one compiled call per tile, fixed tile shape) after a random circular shift,
    so a 2048x2048 image runs in bounded memory and tiles leave no seams. Each step moves the
    image by ``step_size`` times its value range along the gradient divided by its standard
    deviation.

    Parameters
    ----------
    model : keras.Model
        Fully-convolutional models take any image size (tiles up to ``tile_size``); models with a
        fixed input size are run on tiles of exactly that size.
    image : ndarray
        One image ``(H, W[, C])`` (or ``(1, H, W, C)``), uint8 (read as [0, 1]) or float (used in
        its own range, at least [0, 1]).
    layers : str, int or list
        Layers whose mean activation is increased.
    octaves : int
        Number of scales.
    octave_scale : float
        Size ratio between consecutive octaves (> 1).
    steps : int
        Steps per octave (capped by ``VIZKIT_MAX_STEPS`` if set).
    step_size : float
        Step as a fraction of the image's value range.
    tile_size : int
        Largest tile side for fully-convolutional models.
    jitter : int, optional
        Largest random shift per step in pixels; ``None`` means up to a whole tile.
    weights : list of float, optional
        One weight per layer (default 1 each).
    preprocess : callable, optional
        Applied in the graph to the image before the model.
    seed : int
        Same seed, same result.

    Returns
    -------
    ndarray
        ``(H, W, C)`` with the model's channel count; uint8 for uint8 input, float32 in the
        input's range otherwise.

    References
    ----------
    Mordvintsev, Olah & Tyka (2015), "Inceptionism: Going Deeper into Neural Networks".
    """
    x, was_uint8 = _as_image(image, model)
    lo, hi = (0.0, 1.0) if was_uint8 else (min(0.0, float(x.min())), max(1.0, float(x.max())))
    objective = _objective(model, layers, weights)
    steps = capped_steps(steps)
    sizes = _octave_sizes(x.shape[:2], octaves, octave_scale)
    step = positive_number(step_size, "step_size") * (hi - lo)
    tiler = _Tiler(model, objective, preprocess, positive_int(tile_size, "tile_size"), jitter)
    rng = np.random.default_rng(non_negative_int(seed, "seed"))
    detail = np.zeros((*sizes[0], x.shape[2]), np.float32)
    for size in sizes:
        base = _resize(x, size)
        img = base + _resize(detail, size)
        for _ in range(steps):
            grad = tiler.gradient(img, rng)
            img = np.clip(img + step * grad / (grad.std() + 1e-8), lo, hi)
        detail = img - base
    if was_uint8:
        return np.round(img * 255.0).astype(np.uint8)
    return img.astype(np.float32)


class _Tiler:
    """Gradient of the objective over a whole image, computed one fixed-shape tile at a time."""

    def __init__(self, model, objective, preprocess, tile_size: int, jitter):
        self.model, self.objective, self.preprocess = model, objective, preprocess
        h, w, _ = model_input_shape(model)
        # A fixed-size model only takes tiles of its own size.
        self.fixed = (h, w) if h is not None and w is not None else None
        self.tile_size = tile_size
        if jitter is not None:
            non_negative_int(jitter, "jitter")
        self.jitter = jitter

    def gradient(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w, c = img.shape
        th, tw = self.fixed or (min(self.tile_size, h), min(self.tile_size, w))
        fn = gradient_of(self.model, self.objective, (1, th, tw, c), preprocess=self.preprocess)
        # A random circular shift moves tile borders every step, so no seams build up.
        if self.jitter is None:
            shift = (int(rng.integers(0, th)), int(rng.integers(0, tw)))
        else:
            shift = tuple(int(s) for s in rng.integers(-self.jitter, self.jitter + 1, 2))
        rolled = np.roll(img, shift, axis=(0, 1))
        ph, pw = -h % th, -w % tw
        padded = np.pad(rolled, ((0, ph), (0, pw), (0, 0)), mode="wrap")
        grad = np.zeros_like(padded)
        for y in range(0, padded.shape[0], th):
            for x in range(0, padded.shape[1], tw):
                tile = tf.constant(padded[None, y : y + th, x : x + tw])
                grad[y : y + th, x : x + tw] = fn(tile)[1][0].numpy()
        return np.roll(grad[:h, :w], (-shift[0], -shift[1]), axis=(0, 1))


def _objective(model, layers, weights) -> opt.Objective:
    if layers is None:
        raise ValueError("layers must name at least one layer (name, path or index), got None")
    paths = resolve_layers(model, layers)
    if weights is None:
        weights = [1.0] * len(paths)
    weights = [float(w) for w in weights]
    if len(weights) != len(paths):
        raise ValueError(f"weights has {len(weights)} entries for {len(paths)} layers {paths}")
    objective = weights[0] * opt.layer_mean(paths[0])
    for weight, path in zip(weights[1:], paths[1:], strict=True):
        objective = objective + weight * opt.layer_mean(path)
    return objective


def _as_image(image, model) -> tuple[np.ndarray, bool]:
    arr = as_array(image, "image")
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be one image (H, W) or (H, W, C), got shape {arr.shape}")
    # The model's channel count decides how an (H, W, C) array is read; any height and width
    # is fine because gradients are computed tile by tile.
    batch = to_batch(arr, model, name="image", check_size=False)
    if len(batch) != 1:
        raise ValueError(
            f"image must be one image (H, W) or (H, W, C) with C = "
            f"{model_input_shape(model)[2]} (the model's channels), got shape {arr.shape}"
        )
    return batch[0], arr.dtype == np.uint8


def _octave_sizes(shape, octaves, scale) -> list[tuple[int, int]]:
    octaves = positive_int(octaves, "octaves")
    scale = positive_number(scale, "octave_scale")
    if scale < 1.0:
        raise ValueError(f"octave_scale must be >= 1, got {scale!r}")
    sizes = []
    for k in range(octaves - 1, -1, -1):
        factor = scale**k
        sizes.append((max(1, round(shape[0] / factor)), max(1, round(shape[1] / factor))))
    return sizes


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == tuple(size):
        return img
    return tf.image.resize(img, size, method="bilinear", antialias=True).numpy()
