"""Integrated gradients with a completeness check (Sundararajan, Taly & Yan, 2017)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from ..core.checks import choice, positive_int
from ..core.graph import (
    ClassScore,
    Tap,
    compiled,
    image_spec,
    map_batches,
    predict_fn,
    score_and_gradient,
)
from ..core.targets import Prepared, plan_chunks, prepare

RULES = ("trapezoid", "gauss_legendre")
#: Relative completeness error above which a warning suggests more steps.
COMPLETENESS_TOLERANCE = 0.01


@dataclass(frozen=True)
class IntegratedGradients:
    """Integrated-gradients result.

    Attributes
    ----------
    attributions : ndarray, float32, ``(N, H, W, C)``
        ``(x - baseline) * mean gradient along the straight path``.
    delta : ndarray, float32, ``(N,)``
        ``F(x) - F(baseline)``: what the attributions of each image should add up to.
    completeness_error : ndarray, float32, ``(N,)``
        ``|sum(attributions) - delta| / |delta|``; above 0.01 means too few ``steps``.
    """

    attributions: np.ndarray
    delta: np.ndarray
    completeness_error: np.ndarray


def integrated_gradients(
    model: keras.Model,
    images,
    target=None,
    *,
    baseline="black",
    steps: int = 50,
    rule: str = "gauss_legendre",
    blur_sigma: float | None = None,
    warn: bool = True,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> IntegratedGradients:
    """Integrate the gradient along the straight path from a baseline to each image.

    Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks",
    arXiv:1703.01365. By completeness the attributions of an image add up to
    ``F(x) - F(baseline)``; the result reports how far the numerical integral is from that.

    Parameters
    ----------
    baseline : "black", "zeros", None, float, array_like or "blur"
        The reference input: all zeros (``"black"``, ``"zeros"``, None), a constant, an array
        broadcastable to the image batch (same scale as the images after uint8 scaling), or each
        image blurred with a Gaussian of ``blur_sigma`` (default ``min(H, W) / 8``).
    steps : int
        Gradient evaluations per image along the path (all batched in compiled calls).
    rule : {"gauss_legendre", "trapezoid"}
        Quadrature rule; Gauss-Legendre is exact for polynomial paths up to degree
        ``2 * steps - 1``, the trapezoid rule is the Riemann sum of the paper.
    warn : bool
        Warn when any image's completeness error exceeds 1 %.
    batch_size : int or None
        Model inputs (path points) per compiled call, default 32, up to 128 for small images.

    Other parameters are those of :func:`~vizkit.attribution.vanilla_gradients`.
    """
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    return path_integral(
        model, p, baseline=baseline, steps=steps, rule=rule, blur_sigma=blur_sigma, warn=warn
    )


def path_integral(
    model: keras.Model,
    p: Prepared,
    *,
    baseline,
    steps: int,
    rule: str,
    blur_sigma: float | None,
    warn: bool,
) -> IntegratedGradients:
    """Integrated gradients for a prepared call."""
    steps = positive_int(steps, "steps", minimum=2 if rule == "trapezoid" else 1)
    alphas, weights = quadrature(choice(rule, "rule", RULES), steps)
    base = make_baseline(baseline, p.x, blur_sigma)
    fn = _path_gradient_sum_fn(model, p.tap, p.x)
    mean_grad = np.zeros_like(p.x)
    for imgs, points in plan_chunks(len(p.x), steps, p.batch_size):
        mean_grad[imgs] += fn(
            tf.constant(p.x[imgs]),
            tf.constant(base[imgs]),
            tf.constant(p.aux[imgs]),
            tf.constant(alphas[points]),
            tf.constant(weights[points]),
        ).numpy()
    attributions = ((p.x - base) * mean_grad).astype(np.float32)
    delta = _score(model, p, p.x) - _score(model, p, base)
    total = attributions.reshape(len(p.x), -1).sum(axis=1)
    error = (np.abs(total - delta) / np.maximum(np.abs(delta), 1e-12)).astype(np.float32)
    if warn and np.any(error > COMPLETENESS_TOLERANCE):
        worst = int(np.argmax(error))
        warnings.warn(
            f"integrated gradients: attributions of image {worst} add up to {total[worst]:.6g} "
            f"but F(x) - F(baseline) = {delta[worst]:.6g} (completeness error "
            f"{error[worst]:.1%} > 1%); increase steps (now {steps})",
            RuntimeWarning,
            stacklevel=3,
        )
    return IntegratedGradients(attributions, delta.astype(np.float32), error)


def quadrature(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and weights (summing to 1) of the integration rule."""
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
    else:
        nodes, w = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, w / 2
    return alphas.astype(np.float32), weights.astype(np.float32)


def make_baseline(baseline, x: np.ndarray, blur_sigma: float | None = None) -> np.ndarray:
    """The baseline batch for ``x`` (see :func:`integrated_gradients`)."""
    if baseline is None or (isinstance(baseline, str) and baseline in ("black", "zeros")):
        return np.zeros_like(x)
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(
                f"baseline must be 'black', 'zeros', 'blur', a number or an array, got {baseline!r}"
            )
        sigma = min(x.shape[1:3]) / 8 if blur_sigma is None else float(blur_sigma)
        if not sigma > 0:
            raise ValueError(f"blur_sigma must be > 0, got {blur_sigma!r}")
        return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)
    arr = np.asarray(baseline, dtype=np.float32)
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, x.shape), dtype=np.float32)
    except ValueError:
        raise ValueError(
            f"baseline of shape {arr.shape} cannot be broadcast to the images' shape {x.shape}"
        ) from None


def _score(model: keras.Model, p: Prepared, x: np.ndarray) -> np.ndarray:
    out = map_batches(predict_fn(model, _score_tap(p.tap), x), [x], p.batch_size)
    return out.reshape(len(x), -1)[np.arange(len(x)), p.aux].astype(np.float64)


def _score_tap(tap: Tap) -> Tap:
    return Tap(logits=tap.logits, preprocess=tap.preprocess)


def _path_gradient_sum_fn(model: keras.Model, tap: Tap, example: np.ndarray):
    """Compiled ``f(x, base, aux, alphas, weights) -> sum_k weights[k] * grad(path(alphas[k]))``."""

    def make():
        def fn(x, base, aux, alphas, weights):
            k = tf.shape(alphas)[0]
            start = tf.repeat(base, k, axis=0)
            step = tf.repeat(x - base, k, axis=0)
            a = tf.reshape(tf.tile(alphas, [tf.shape(x)[0]]), (-1, 1, 1, 1))
            points = start + a * step
            _, grad = score_and_gradient(model, ClassScore(), tap, points, tf.repeat(aux, k))
            grad = grad * tf.reshape(tf.tile(weights, [tf.shape(x)[0]]), (-1, 1, 1, 1))
            grad = tf.reshape(grad, tf.concat([[tf.shape(x)[0], k], tf.shape(x)[1:]], axis=0))
            return tf.reduce_sum(grad, axis=1)

        signature = (
            image_spec(example),
            image_spec(example),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        )
        return fn, signature

    return compiled(model, ("integrated", tap), make)
