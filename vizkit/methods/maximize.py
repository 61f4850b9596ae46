"""Activation maximisation: the input image each unit of a layer responds to most."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from .. import optimize as opt
from ..core.graph import Tap, final_layer, forward
from ..core.layers import resolve_layer
from ..core.tokens import check_grid_args, infer_grid
from ..optimize.core import image_size


def maximize(
    model: keras.Model,
    layer: str | int,
    units: int | Sequence[int] | None = None,
    *,
    steps: int = 256,
    learning_rate: float = 0.05,
    param="fourier",
    transforms="standard",
    regularizers=None,
    size=None,
    diversity: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
    preprocess: Callable | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    warmup: int | None = None,
    return_history: bool = False,
    token_grid: tuple[int, int] | None = None,
    prefix_tokens: int | None = None,
):
    """Synthesise, by gradient ascent, the input that most excites each unit of ``layer``.

    Conv layers maximise a channel's mean activation, transformer token layers ``(N, T, C)`` a
    channel's mean over the patch tokens (prefix tokens left out), layers with ``(N, units)``
    outputs a unit's activation, and the model's softmax output layer a class *logit* (the softmax is bypassed so
    that a class cannot win by suppressing the others). All requested units are optimised
    together as one batch with one compiled loop (see :func:`vizkit.optimize.optimize`).

    Parameters
    ----------
    model : keras.Model
    layer : str or int
        Layer name, path (``"backbone/conv3"``) or index.
    units : int or list of int, optional
        Channels/units/classes to visualise; ``None`` means all of them.
    steps : int
        Optimisation steps (capped by the ``VIZKIT_MAX_STEPS`` environment variable if set).
    learning_rate : float
        Adam step size in parameter space.
    param : {"fourier", "pixel"} or a parametrisation object
        ``"fourier"`` (decorrelated, 1/f-scaled spectrum) gives the most legible images.
    transforms : "standard", None or list
        Random pad/jitter/scale/rotate applied at every step (transformation robustness).
    regularizers : list, optional
        Penalties from :mod:`vizkit.optimize.regularizers` (``l2``, ``total_variation``, ``blur``).
    size : int or (H, W), optional
        Image size; defaults to the model's input size (required for fully-convolutional models).
    diversity : float
        Weight of a term that pushes the images of a batch apart (0 keeps images independent).
    batch_size : int, optional
        Images optimised at once (default 32).
    seed : int
        Same seed, same images.
    preprocess : callable, optional
        Applied in the graph to the images (scaled to ``value_range``) before the model.
    value_range : (low, high)
        The model's input range.
    warmup : int, optional
        Steps of ReLU-gradient warm-up so that units silent on the grey start image still get
        a gradient; ``None`` means ``min(16, steps // 4)``, 0 turns it off.
    return_history : bool
        Also return the objective at every step, ``(steps, n_units)``.
    token_grid : (h, w), optional
        Patch grid of a token layer when it cannot be inferred from the token count.
    prefix_tokens : int, optional
        Class/distillation/register tokens in front of the patch tokens.

    Returns
    -------
    ndarray
        ``(n_units, H, W, C)`` float32 in [0, 1]; with ``return_history`` a tuple
        ``(images, history)``.

    References
    ----------
    Erhan et al. (2009), "Visualizing Higher-Layer Features of a Deep Network"; Simonyan et al.
    (2014), "Deep Inside Convolutional Networks"; Olah et al. (2017), "Feature Visualization".
    """
    path, obj = resolve_layer(model, layer)
    shape = image_size(model, size)
    grid_args = check_grid_args(token_grid, prefix_tokens)
    make, n_units = _unit_objective(model, path, obj, shape, grid_args)
    chosen = _check_units(units, n_units, path)
    objective = make(path)
    if diversity:
        objective = objective + float(diversity) * opt.diversity(path)
    result = opt.optimize(
        model,
        objective,
        units=chosen,
        size=shape[:2],
        param=param,
        transforms=transforms,
        regularizers=regularizers,
        steps=steps,
        learning_rate=learning_rate,
        seed=seed,
        preprocess=preprocess,
        value_range=value_range,
        batch_size=batch_size,
        warmup=warmup,
    )
    if return_history:
        return result.images, result.history
    return result.images


def _unit_objective(model, path: str, layer, shape, grid_args) -> tuple[Callable, int]:
    """``(make(path) -> Objective with per-image units, number of units)`` for ``layer``."""
    final = final_layer(model)
    if final is not None and final[0] is layer:
        n_classes = int(model.outputs[0].shape[-1])
        return (lambda _path: opt.class_logit(None)), n_classes
    out_shape = _output_shape(model, path, layer, shape)
    if len(out_shape) == 4:
        return (lambda p: opt.channel(p, None)), int(out_shape[-1])
    if len(out_shape) == 2:
        return (lambda p: opt.dense_unit(p, None)), int(out_shape[-1])
    if len(out_shape) == 3 and out_shape[1] is not None:
        # A token layer: the channel's mean over the patch tokens of its grid.
        grid = infer_grid(
            out_shape[1],
            token_grid=grid_args[0],
            prefix_tokens=grid_args[1],
            layer=f"layer {path!r} (output shape {tuple(out_shape)})",
        )
        return (lambda p: opt.channel(p, None, prefix_tokens=grid.prefix)), int(out_shape[-1])
    raise ValueError(
        f"layer {path!r} has output shape {tuple(out_shape)}; maximize needs a layer with "
        "(N, H, W, C), (N, T, C) token or (N, units) outputs"
    )


def _output_shape(model, path: str, layer, shape) -> tuple:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        # Subclassed or not-yet-connected layers: trace once eagerly on a blank image.
        _, captured = forward(model, tf.zeros((1, *shape)), Tap(capture=(path,)))
        return tuple(captured[path].shape)


def _check_units(units, n_units: int, path: str) -> np.ndarray:
    if units is None:
        return np.arange(n_units, dtype=np.int32)
    if isinstance(units, (int, np.integer)) and not isinstance(units, bool):
        units = [units]
    if not isinstance(units, (list, tuple, range, np.ndarray)):
        raise TypeError(
            f"units must be None, an int or a list of ints (0..{n_units - 1} for layer "
            f"{path!r}), got {type(units).__name__}: {units!r}"
        )
    values = list(units)
    bad = [
        u
        for u in values
        if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or not 0 <= u < n_units
    ]
    if bad or not values:
        raise ValueError(
            f"units {bad or values!r} are not valid for layer {path!r}: "
            f"valid units are 0..{n_units - 1} ({n_units} units)"
        )
    return np.asarray(values, dtype=np.int32)
