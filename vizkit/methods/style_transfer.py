"""Neural style transfer (Gatys, Ecker & Bethge, 2016, "Image Style Transfer Using Convolutional
Neural Networks"), on the optimisation core shared with activation maximisation.

The image is optimised so that the Gram matrices of the style layers match those of the style
image and the activations of the content layers match those of the content image, with a
total-variation penalty for smoothness. It runs as one :func:`vizkit.optimize.optimize` call:
the same parametrisations, the same compiled loop (Adam, no Python per step), seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from .. import optimize as opt
from ..core.checks import positive_number
from ..core.graph import Tap, activations_fn
from ..core.images import model_input_shape, to_batch
from ..core.layers import is_conv, iter_layers, output_shape, resolve_layers
from ..optimize.core import gradient_of, image_size

INITS = ("content", "noise")


def style_transfer(
    model: keras.Model,
    content,
    style,
    *,
    content_layers=None,
    style_layers=None,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    tv_weight: float = 0.05,
    steps: int = 200,
    size=None,
    param="pixel",
    learning_rate: float = 0.05,
    init: str = "content",
    seed: int = 0,
    preprocess: Callable | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    return_history: bool = False,
):
    """Paint ``content`` in the style of ``style`` with the features of ``model``.

    Parameters
    ----------
    model : keras.Model
        Any convolutional network (VGG-like ones work best); fully convolutional models (e.g.
        ``include_top=False``) take any ``size``.
    content, style : array_like ``(H, W[, C])``
        The two images (uint8 or float in [0, 1]); both are resized to ``size``.
    content_layers, style_layers : layer name, index or list of them, optional
        Defaults: for style, the first convolution of each resolution stage (up to five, like
        conv1_1 ... conv5_1 in the paper); for content, the last convolution of the
        second-to-last stage (the paper's conv4_2 in VGG-19).
    content_weight, style_weight : float
        Weights of the content and style losses. Each layer's loss is relative to its target's
        mean square (see :func:`vizkit.optimize.gram_loss`), so the weights do not depend on
        the model's activation scale; style losses are averaged over the style layers.
    tv_weight : float
        Total-variation penalty (0 turns it off).
    steps : int
        Adam steps (capped by ``VIZKIT_MAX_STEPS`` if set).
    size : int or (H, W), optional
        Output size; default the model's input size, else the content image's size.
    param : {"pixel", "fourier"} or a parametrisation
        How the image is parametrised (pixels, as in the paper, by default).
    learning_rate : float
        Adam step size in parameter space.
    init : {"content", "noise"}
        Start from the content image, or from the seeded random start of the parametrisation.
    seed : int
        Same seed, same image.
    preprocess : callable or str, optional
        Applied in the graph before the model (a :mod:`vizkit.preprocessing` preset name too).
    value_range : (low, high)
        The model's input range (images in [0, 1] are mapped onto it before ``preprocess``).
    return_history : bool
        Also return the objective, ``-(content + style losses)``, at every step ``(steps,)``.

    Returns
    -------
    ndarray ``(H, W, C)`` float32 in [0, 1]; with ``return_history`` ``(image, history)``.
    """
    objective, start, shape = _setup(
        model,
        content,
        style,
        content_layers,
        style_layers,
        content_weight,
        style_weight,
        size,
        preprocess,
        value_range,
    )
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    tv = positive_number(tv_weight, "tv_weight") if tv_weight else 0.0
    result = opt.optimize(
        model,
        -1.0 * objective,
        n=1,
        size=shape[:2],
        param=param,
        transforms=None,
        regularizers=[opt.total_variation(tv)] if tv else None,
        steps=steps,
        learning_rate=learning_rate,
        seed=seed,
        preprocess=preprocess,
        value_range=value_range,
        warmup=0,
        init=start[None] if init == "content" else None,
    )
    image = result.images[0]
    if return_history:
        return image, result.history[:, 0]
    return image


def style_losses(
    model: keras.Model,
    image,
    content,
    style,
    *,
    content_layers=None,
    style_layers=None,
    size=None,
    preprocess: Callable | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, float]:
    """The content and style losses of ``image`` (unweighted, as :func:`style_transfer`
    defines them): ``{"content": ..., "style": ...}``, each a mean over its layers."""
    content_part, style_part, shape = _objectives(
        model, content, style, content_layers, style_layers, size, preprocess, value_range
    )
    x = _scaled(_fit(image, model, shape), value_range)[None]
    out = {}
    for name, objective in (("content", content_part), ("style", style_part)):
        fn = gradient_of(model, objective, x.shape, preprocess=preprocess)
        out[name] = float(fn(tf.constant(x))[0].numpy()[0])
    return out


def gram_matrix(features) -> np.ndarray:
    """Gram matrices ``(N, C, C)`` of activations ``(N, H, W, C)`` (or ``(N, T, C)``):
    ``F^T F / positions`` per image, float32 (see :func:`vizkit.optimize.gram_matrix`)."""
    arr = np.asarray(features, dtype=np.float32)
    if arr.ndim < 3:
        raise ValueError(f"features must be (N, ..., C) with positions, got shape {arr.shape}")
    return opt.gram_matrix(tf.constant(arr)).numpy()


def default_layers(model: keras.Model) -> tuple[list[str], list[str]]:
    """``(content_layers, style_layers)`` used when none are given (see :func:`style_transfer`).

    Resolution stages are runs of convolutions between poolings or strided convolutions, so
    models that take any image size are staged too.
    """
    stages: list[list[str]] = []
    new_stage = True
    for path, layer in iter_layers(model):
        if isinstance(layer, keras.Model):
            continue
        strides = np.atleast_1d(getattr(layer, "strides", None) or 1)
        if is_conv(layer) and len(output_shape(layer) or ()) == 4:
            # Stages are cut where the resolution drops: a strided convolution starts one.
            if new_stage or np.any(strides > 1):
                stages.append([])
                new_stage = False
            stages[-1].append(path)
        elif getattr(layer, "pool_size", None) is not None or np.any(strides > 1):
            new_stage = True
    if not stages:
        raise ValueError(
            f"model {model.name!r} has no convolution layer with a 4-D output; pass "
            "content_layers= and style_layers= naming layers with spatial outputs"
        )
    style = [stage[0] for stage in stages][:5]
    content = stages[-2][-1] if len(stages) > 1 else stages[-1][-1]
    return [content], style


# --------------------------------------------------------------------------------------------
def _setup(model, content, style, content_layers, style_layers, cw, sw, size, pre, value_range):
    content_part, style_part, shape = _objectives(
        model, content, style, content_layers, style_layers, size, pre, value_range
    )
    cw = _weight(cw, "content_weight")
    sw = _weight(sw, "style_weight")
    if cw == 0 and sw == 0:
        raise ValueError("content_weight and style_weight are both 0: there is nothing to match")
    objective = cw * content_part + sw * style_part
    start = _fit(content, model, shape)
    return objective, start, shape


def _objectives(model, content, style, content_layers, style_layers, size, pre, value_range):
    first = to_batch(content, model, name="content", check_size=False)
    if len(first) != 1:
        raise ValueError(f"content must be one image (H, W[, C]), got {len(first)} images")
    h, w, _ = model_input_shape(model)
    shape = image_size(model, size if size is not None else ((h, w) if h else first.shape[1:3]))
    defaults = default_layers(model) if content_layers is None or style_layers is None else None
    c_paths = resolve_layers(model, content_layers if content_layers is not None else defaults[0])
    s_paths = resolve_layers(model, style_layers if style_layers is not None else defaults[1])
    images = np.stack([_fit(content, model, shape), _fit(style, model, shape, name="style")])
    tap = Tap(capture=tuple(dict.fromkeys([*c_paths, *s_paths])), preprocess=pre)
    acts = activations_fn(model, tap, images)(tf.constant(_scaled(images, value_range)))
    content_part = _mean([opt.feature_loss(p, acts[p].numpy()[0]) for p in c_paths])
    style_part = _mean([opt.gram_loss(p, gram_matrix(acts[p].numpy()[1:])[0]) for p in s_paths])
    return content_part, style_part, shape


def _mean(objectives: list) -> opt.Objective:
    total = objectives[0]
    for objective in objectives[1:]:
        total = total + objective
    return total / len(objectives)


def _fit(image, model, shape, name: str = "content") -> np.ndarray:
    """One image as ``(H, W, C)`` float32 in [0, 1] at ``shape``."""
    batch = to_batch(image, model, name=name, check_size=False)
    if len(batch) != 1:
        raise ValueError(f"{name} must be one image (H, W[, C]), got {len(batch)} images")
    x = batch[0]
    if x.min() < 0.0 or x.max() > 1.0:
        raise ValueError(
            f"{name} has values in [{x.min():.3g}, {x.max():.3g}]; pass uint8 or floats in [0, 1] "
            "(value_range= and preprocess= map them to the model's range)"
        )
    if x.shape[:2] != tuple(shape[:2]):
        x = tf.image.resize(x, shape[:2], method="area").numpy()
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _scaled(images: np.ndarray, value_range) -> np.ndarray:
    lo, hi = (float(v) for v in value_range)
    return (lo + (hi - lo) * images).astype(np.float32)


def _weight(value, name: str) -> float:
    if value == 0:
        return 0.0
    return positive_number(value, name)


__all__: Sequence[str] = ["default_layers", "gram_matrix", "style_losses", "style_transfer"]
