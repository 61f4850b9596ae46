"""SmoothGrad: gradients averaged over noisy copies of each image (Smilkov et al., 2017)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..core.checks import positive_int
from ..core.graph import ClassScore, Tap, compiled, image_spec, score_and_gradient
from ..core.targets import Prepared, plan_chunks, prepare


def smooth_gradients(
    model: keras.Model,
    images,
    target=None,
    *,
    samples: int = 50,
    noise: float = 0.15,
    squared: bool = False,
    seed: int | None = 0,
    logits: bool = True,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Mean gradient over ``samples`` copies of each image with Gaussian noise added.

    Smilkov et al. (2017), "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.

    Parameters
    ----------
    samples : int
        Noisy copies per image.
    noise : float
        Noise standard deviation as a fraction of each image's value range ``max - min``
        (the paper finds 10-20 % works best).
    squared : bool
        Average the squared gradients instead ("SmoothGrad-squared", Hooker et al., 2019).
    seed : int or None
        Seed of the noise; the same seed and images give identical results whatever
        ``batch_size`` (copy ``s`` of image ``i`` always gets the same noise). None draws fresh
        noise.
    batch_size : int or None
        Model inputs (noisy copies) per compiled call, default 32, up to 128 for small images.

    Other parameters are those of :func:`~vizkit.attribution.vanilla_gradients`.

    Returns
    -------
    ndarray, float32, ``(N, H, W, C)``.
    """
    p = prepare(model, images, target, logits=logits, preprocess=preprocess, batch_size=batch_size)
    return noisy_gradients(model, p, samples=samples, noise=noise, squared=squared, seed=seed)


def noisy_gradients(
    model: keras.Model, p: Prepared, *, samples: int, noise: float, squared: bool, seed: int | None
) -> np.ndarray:
    """SmoothGrad for a prepared call: noisy copies made and differentiated inside the graph."""
    samples = positive_int(samples, "samples")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < np.inf:
        raise ValueError(
            f"noise must be a float >= 0 and finite (fraction of the value range), got {noise!r}"
        )
    fn = _noisy_gradient_sum_fn(model, p.tap, bool(squared), p.x)
    span = p.x.reshape(len(p.x), -1)
    sigma = (noise * (span.max(axis=1) - span.min(axis=1))).astype(np.float32)
    base_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
    total = np.zeros_like(p.x)
    for imgs, copies in plan_chunks(len(p.x), samples, p.batch_size):
        # Global number of each image's first copy in this call: the noise of a copy depends on
        # (seed, image, copy) only, not on how the copies are chunked.
        first = np.arange(imgs.start, imgs.stop, dtype=np.int64) * samples + copies.start
        total[imgs] += fn(
            tf.constant(p.x[imgs]),
            tf.constant(p.aux[imgs]),
            tf.constant(sigma[imgs]),
            tf.constant(copies.stop - copies.start, tf.int32),
            tf.constant(first.astype(np.int32)),
            tf.constant(base_seed, tf.int32),
        ).numpy()
    return (total / samples).astype(np.float32)


def _noisy_gradient_sum_fn(model: keras.Model, tap: Tap, squared: bool, example: np.ndarray):
    """Compiled ``f(x, aux, sigma, reps, first, seed) -> sum over reps noisy copies of the
    gradient``; copy ``r`` of image ``i`` gets noise seeded by ``(seed, first[i] + r)``."""

    def make():
        def fn(x, aux, sigma, reps, first, seed):
            copies = tf.repeat(x, reps, axis=0)
            scale = tf.reshape(tf.repeat(sigma, reps), (-1, 1, 1, 1))
            counters = tf.reshape(first[:, None] + tf.range(reps)[None, :], (-1,))
            seeds = tf.stack([tf.fill(tf.shape(counters), seed), counters], axis=1)
            one = tf.shape(x)[1:]
            noise = tf.map_fn(
                lambda s: tf.random.stateless_normal(one, s), seeds, fn_output_signature=tf.float32
            )
            copies = copies + scale * noise
            _, grad = score_and_gradient(model, ClassScore(), tap, copies, tf.repeat(aux, reps))
            if squared:
                grad = grad * grad
            grad = tf.reshape(grad, tf.concat([[tf.shape(x)[0], reps], tf.shape(x)[1:]], axis=0))
            return tf.reduce_sum(grad, axis=1)

        signature = (
            image_spec(example),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((), tf.int32),
        )
        return fn, signature

    return compiled(model, ("smoothgrad", tap, squared), make)
