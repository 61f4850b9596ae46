"""The one optimisation loop behind activation maximisation, plus the compiled objective gradient
that DeepDream uses.

:func:`optimize` compiles, once per model and configuration, a single ``tf.function`` holding a
``tf.while_loop`` over all steps for the whole batch: parametrisation -> transforms -> model
(one intercepted forward pass capturing every layer the objective needs) -> objective minus
regularisers -> gradient -> Adam (or normalised gradient ascent). No Python runs per step.
During the first ``warmup`` steps the gradient passes ReLUs by the deconvnet rule (a ReLU
warm-up in the spirit of lucid's redirected ReLU), so units that are off on the grey start
image still receive a gradient.

The environment variable ``VIZKIT_MAX_STEPS`` caps every optimisation's number of steps
(``steps = min(steps, VIZKIT_MAX_STEPS)``); the test suite sets it to 40 to stay fast.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..core.checks import positive_int, positive_number
from ..core.graph import Tap, check_batch_size, compiled, forward
from ..core.images import model_input_shape
from ..core.layers import iter_layers, resolve_layer
from .objectives import Objective
from .params import get_param
from .regularizers import get_regularizers
from .transforms import apply_transforms, fold_in, get_transforms

MAX_STEPS_ENV = "VIZKIT_MAX_STEPS"
OPTIMIZERS = ("adam", "ascent")
_ADAM = (0.9, 0.999, 1e-8)


@dataclass(frozen=True)
class OptimizeResult:
    """Optimised images ``(N, H, W, C)`` in [0, 1] and the objective per step ``(steps, N)``."""

    images: np.ndarray
    history: np.ndarray


def capped_steps(steps, name: str = "steps") -> int:
    """Validate a positive step count and apply the ``VIZKIT_MAX_STEPS`` cap if it is set."""
    steps = positive_int(steps, name)
    cap = os.environ.get(MAX_STEPS_ENV)
    if cap:
        try:
            limit = int(cap)
        except ValueError:
            raise ValueError(f"{MAX_STEPS_ENV} must be a positive int, got {cap!r}") from None
        steps = min(int(steps), max(1, limit))
    return int(steps)


def image_size(model: keras.Model, size) -> tuple[int, int, int]:
    """``(H, W, C)`` to optimise: ``size`` where given, else the model's fixed input size."""
    h, w, c = model_input_shape(model)
    if size is None:
        if h is None or w is None:
            raise ValueError(
                f"model {model.name!r} accepts any image size (input {(h, w, c)}); pass size=(H, W)"
            )
        size = (h, w)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    size = tuple(size)
    if len(size) != 2 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
    for got, want, dim in ((size[0], h, "height"), (size[1], w, "width")):
        if want is not None and got != want:
            raise ValueError(f"size {dim} {got} does not match model input {dim} {want}")
    return int(size[0]), int(size[1]), int(c if c is not None else 3)


def objective_tap(model: keras.Model, objective: Objective, preprocess=None):
    """The :class:`Tap` and ``((spec, path), ...)`` pairs to evaluate ``objective`` on ``model``."""
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be an Objective, got {type(objective).__name__}")
    specs = tuple((spec, resolve_layer(model, spec)[0]) for spec in objective.layers)
    paths = tuple(dict.fromkeys(path for _, path in specs))
    tap = Tap(capture=paths, logits=objective.needs_logits, preprocess=preprocess)
    return tap, specs


def evaluate(model, objective: Objective, tap: Tap, specs, x: tf.Tensor, units: tf.Tensor):
    """Scores ``(N,)`` of ``objective`` for model inputs ``x`` (one forward pass)."""
    outputs, captured = forward(model, x, tap)
    acts = {spec: captured[path] for spec, path in specs}
    return objective(acts, outputs, units)


def gradient_of(model: keras.Model, objective: Objective, shape: tuple, *, preprocess=None):
    """Compiled ``f(x) -> (scores (N,), d sum(scores) / dx)`` for inputs of fixed ``shape``."""
    tap, specs = objective_tap(model, objective, preprocess)

    def make():
        def fn(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = evaluate(model, objective, tap, specs, x, tf.zeros((1,), tf.int32))
                total = tf.reduce_sum(scores)
            return scores, tape.gradient(total, x)

        return fn, (tf.TensorSpec(shape, tf.float32),)

    return compiled(model, ("optimize.gradient", objective, specs, tap, tuple(shape)), make)


def optimize(
    model: keras.Model,
    objective: Objective,
    *,
    units: Sequence[int] | None = None,
    n: int | None = None,
    size=None,
    param="fourier",
    transforms="standard",
    regularizers=None,
    steps: int = 256,
    learning_rate: float = 0.05,
    optimizer: str = "adam",
    seed: int = 0,
    preprocess: Callable | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    batch_size: int | None = None,
    warmup: int | None = None,
    init=None,
) -> OptimizeResult:
    """Find images that maximise ``objective`` by gradient ascent.

    Parameters
    ----------
    model : keras.Model
    objective : Objective
        Terms with ``unit=None`` read the unit of image ``i`` from ``units[i]``.
    units : sequence of int, optional
        One unit per image; with the number of times the unit occurred earlier in the list, it
        seeds the image's initialisation and random transforms, so an image depends neither on
        the other units in the batch nor on ``batch_size``.
    n : int, optional
        Number of images when ``units`` is not given (default 1).
    size : int or (H, W), optional
        Image size; defaults to the model's input size (required for fully-convolutional models).
    param : {"fourier", "pixel"} or a parametrisation from :mod:`vizkit.optimize.params`
    transforms : "standard", None or a list of transforms (applied inside the gradient path)
    regularizers : list of regularisers, optional
    steps : int
        Number of steps, capped by ``VIZKIT_MAX_STEPS`` when that variable is set.
    learning_rate : float
    optimizer : {"adam", "ascent"}
        Adam, or gradient ascent with the gradient divided by its mean absolute value per image.
    seed : int
        Same seed, same result.
    preprocess : callable, optional
        Applied inside the graph to the images scaled to ``value_range`` before the model.
    value_range : (low, high)
        Range of the model's input; the optimised images in [0, 1] are mapped onto it.
    batch_size : int, optional
        Images optimised together (default 32); larger jobs run in chunks.
    warmup : int, optional
        Steps of ReLU-gradient warm-up (lucid's trick, here with the deconvnet rule: positive
        gradients pass through ReLUs that are off), so that units silent on the grey start
        image still receive a gradient. ``None`` means ``min(16, steps // 4)``; 0 turns it off.
    init : ndarray, optional
        Start images ``(N, H, W, C)`` (or one ``(H, W, C)`` for every image) in [0, 1]
        instead of the random grey start (style transfer starts from the content image).

    Returns
    -------
    OptimizeResult
        ``images`` ``(N, H, W, C)`` float32 in [0, 1]; ``history`` ``(steps, N)`` objective
        values (without regularisers) at each step.
    """
    steps = capped_steps(steps)
    shape = image_size(model, size)
    units_arr = _units(units, n)
    seed = _seed(seed)
    lr = positive_number(learning_rate, "learning_rate")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    lo, hi = _value_range(value_range)
    warmup = _warmup(warmup, steps)
    config = _Config(
        objective=objective,
        param=get_param(param),
        transforms=get_transforms(transforms, shape[:2]),
        regularizers=get_regularizers(regularizers),
        shape=shape,
        optimizer=optimizer,
        value_range=(lo, hi),
        warmup=warmup > 0 and _has_relu(model),
    )
    run = _loop_fn(model, config, preprocess)
    repeat = _repeat_index(units_arr)
    if init is None:
        init = config.param.init(
            [(u,) if r == 0 else (u, r) for u, r in zip(units_arr, repeat, strict=True)],
            shape,
            seed,
        )
    else:
        init = config.param.inverse(_start_images(init, len(units_arr), shape))
    chunk = check_batch_size(batch_size)
    images, history = [], []
    for start in range(0, len(units_arr), chunk):
        out, hist = run(
            tf.constant(init[start : start + chunk]),
            tf.constant(units_arr[start : start + chunk]),
            tf.constant(repeat[start : start + chunk]),
            tf.constant(seed, tf.int32),
            tf.constant(steps, tf.int32),
            tf.constant(lr, tf.float32),
            tf.constant(warmup, tf.int32),
        )
        images.append(out.numpy())
        history.append(hist.numpy())
    return OptimizeResult(
        np.concatenate(images).astype(np.float32), np.concatenate(history, axis=1)
    )


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    objective: Objective
    param: object
    transforms: tuple
    regularizers: tuple
    shape: tuple[int, int, int]
    optimizer: str
    value_range: tuple[float, float]
    warmup: bool


def _loop_fn(model: keras.Model, config: _Config, preprocess):
    """Compiled ``run(params, units, repeat, seed, steps, lr, warmup) -> (images, history)``."""
    tap, specs = objective_tap(model, config.objective, preprocess)
    param, shape = config.param, config.shape
    lo, hi = config.value_range

    warm_tap = dataclasses.replace(tap, relu="deconv")

    def gradient(p, units, step_seed, tap):
        with tf.GradientTape() as tape:
            tape.watch(p)
            image = param.to_image(p, shape)
            x = _fit(apply_transforms(config.transforms, image, step_seed), shape[:2])
            scores = evaluate(model, config.objective, tap, specs, lo + (hi - lo) * x, units)
            penalty = sum((r(image) for r in config.regularizers), tf.zeros_like(scores))
            # Each image's gain depends only on its own pixels (except for diversity), so the
            # gradient of the sum is every image's own gradient.
            total = tf.reduce_sum(scores - penalty)
        return scores, tape.gradient(total, p)

    def make():
        def run(params, units, repeat, seed, steps, lr, warmup):
            b1, b2, eps = _ADAM

            # One seed per image, keyed like the initialisation by (unit, how many times the
            # unit came before), so an image's draws do not depend on the rest of the batch.
            keys = tf.stack([tf.fill(tf.shape(units), seed), units], axis=1)
            keys = fold_in(keys, repeat)

            def body(i, p, m, v, history):
                step_seed = fold_in(keys, i)
                if config.warmup:
                    # ReLU-gradient warm-up: in the first steps, positive gradients also pass
                    # through ReLUs that are off, so units dead at the grey start can wake up.
                    scores, g = tf.cond(
                        i < warmup,
                        lambda: gradient(p, units, step_seed, warm_tap),
                        lambda: gradient(p, units, step_seed, tap),
                    )
                else:
                    scores, g = gradient(p, units, step_seed, tap)
                if config.optimizer == "adam":
                    t = tf.cast(i + 1, tf.float32)
                    m = b1 * m + (1 - b1) * g
                    v = b2 * v + (1 - b2) * tf.square(g)
                    update = (m / (1 - b1**t)) / (tf.sqrt(v / (1 - b2**t)) + eps)
                else:
                    axes = list(range(1, len(p.shape)))
                    update = g / (tf.reduce_mean(tf.abs(g), axis=axes, keepdims=True) + 1e-8)
                return i + 1, p + lr * update, m, v, history.write(i, scores)

            history = tf.TensorArray(tf.float32, size=steps, element_shape=(None,))
            zeros = tf.zeros_like(params)
            _, p, _, _, history = tf.while_loop(
                lambda i, *_: i < steps,
                body,
                (tf.constant(0), params, zeros, zeros, history),
                parallel_iterations=1,
            )
            return param.to_image(p, shape), history.stack()

        signature = (
            tf.TensorSpec((None, *param.param_shape(shape)), tf.float32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.float32),
            tf.TensorSpec((), tf.int32),
        )
        return run, signature

    return compiled(model, ("optimize.loop", config, specs, tap), make)


def _fit(x: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Centre-crop (or resize, if smaller) transformed images back to the model's size."""
    h, w = x.shape[1], x.shape[2]
    if (h, w) == tuple(size):
        return x
    if h >= size[0] and w >= size[1]:
        top, left = (h - size[0]) // 2, (w - size[1]) // 2
        return x[:, top : top + size[0], left : left + size[1], :]
    return tf.image.resize(x, size)


def _start_images(init, n: int, shape: tuple[int, int, int]) -> np.ndarray:
    arr = np.asarray(init, dtype=np.float32)
    if arr.ndim == 3:
        arr = np.broadcast_to(arr, (n, *arr.shape))
    if arr.shape != (n, *shape):
        raise ValueError(
            f"init must be {n} image(s) of shape {shape} in [0, 1], got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError("init images must be finite and in [0, 1]")
    return arr


def _units(units, n) -> np.ndarray:
    if units is None:
        count = 1 if n is None else n
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        return np.arange(count, dtype=np.int32)
    arr = np.asarray(units)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0:
        raise ValueError(f"units must be a non-empty list of non-negative ints, got {units!r}")
    return arr.astype(np.int32)


def _repeat_index(units: np.ndarray) -> np.ndarray:
    """How many times each unit occurred earlier in ``units`` ([3, 3, 1, 3] -> [0, 1, 0, 2])."""
    seen: dict[int, int] = {}
    out = np.empty(len(units), np.int32)
    for i, u in enumerate(units.tolist()):
        out[i] = seen.get(u, 0)
        seen[u] = out[i] + 1
    return out


def _has_relu(model: keras.Model) -> bool:
    return any(
        getattr(layer, "activation", None) is keras.activations.relu
        or isinstance(layer, keras.layers.ReLU)
        for _, layer in iter_layers(model)
    )


def _warmup(warmup, steps: int) -> int:
    if warmup is None:
        return min(16, steps // 4)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int or None, got {warmup!r}")
    return int(warmup)


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _value_range(value_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be (low, high), got {value_range!r}") from None
    if not lo < hi:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    return lo, hi
