"""Random transforms applied inside the gradient path (transformation robustness).

Jittering, scaling and rotating the image at every step before the model sees it makes the
optimised pattern robust to small moves, which removes most high-frequency adversarial noise
(Olah et al., 2017, "Feature Visualization", Distill; lucid's ``optvis.transform``).

Every transform is a small immutable (hashable) object called as ``t(images, seeds)`` with
``images`` ``(N, H, W, C)`` and ``seeds`` an int32 ``(N, 2)`` tensor, one seed per image (a single
``(2,)`` seed is spread over the batch by position). An image's draws depend only on its own seed
(:func:`uniform` is a counter-based hash, not a batch-wide generator), so the optimiser gives the
same image for a unit however the units are batched or chunked. All transforms keep shape and
dtype, except :func:`pad`, which grows the image; the core crops the result back to the size the
model expects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

_PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class Pad:
    """Pad by ``width`` pixels on every side with ``value`` (or by reflection)."""

    width: int
    value: float = 0.5
    mode: str = "constant"

    def __call__(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        paddings = [[0, 0], [self.width, self.width], [self.width, self.width], [0, 0]]
        if self.mode == "reflect":
            return tf.pad(images, paddings, mode="REFLECT")
        return tf.pad(images, paddings, constant_values=self.value)


@dataclass(frozen=True)
class Jitter:
    """Translate each image by a random integer offset in ``[-d, d]`` (reflected borders)."""

    d: int

    def __call__(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        n = tf.shape(images)[0]
        u = uniform(per_image(seeds, n), 2)
        shift = tf.minimum(tf.floor(u * (2 * self.d + 1)), 2 * self.d) - self.d
        one, zero = tf.ones((n,)), tf.zeros((n,))
        rows = [one, zero, -shift[:, 1], zero, one, -shift[:, 0], zero, zero]
        return _affine(images, tf.stack(rows, axis=1))


@dataclass(frozen=True)
class RandomScale:
    """Zoom each image about its centre by a factor drawn from ``scales``."""

    scales: tuple[float, ...]

    def __call__(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        s = _choose(self.scales, per_image(seeds, tf.shape(images)[0]))
        cy, cx = _centre(images)
        inv = 1.0 / s
        zero = tf.zeros_like(s)
        rows = [inv, zero, cx * (1 - inv), zero, inv, cy * (1 - inv), zero, zero]
        return _affine(images, tf.stack(rows, axis=1))


@dataclass(frozen=True)
class RandomRotate:
    """Rotate each image counter-clockwise about its centre by an angle (degrees) from ``angles``."""

    angles: tuple[float, ...]

    def __call__(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        radians = tuple(a * math.pi / 180 for a in self.angles)
        theta = _choose(radians, per_image(seeds, tf.shape(images)[0]))
        cy, cx = _centre(images)
        c, s = tf.cos(theta), tf.sin(theta)
        zero = tf.zeros_like(c)
        # Output -> input mapping of a counter-clockwise rotation (as displayed, y down).
        rows = [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy, zero, zero]
        return _affine(images, tf.stack(rows, axis=1))


def pad(width: int, *, value: float = 0.5, mode: str = "constant") -> Pad:
    """Pad transform (grows H and W by ``2 * width``)."""
    if mode not in _PAD_MODES:
        raise ValueError(f"mode must be one of {_PAD_MODES}, got {mode!r}")
    return Pad(_non_negative(width, "width"), float(value), mode)


def jitter(d: int) -> Jitter:
    """Random translation by up to ``d`` pixels in each direction."""
    return Jitter(_non_negative(d, "d"))


def random_scale(scales: Sequence[float]) -> RandomScale:
    """Random zoom by a factor from ``scales`` (e.g. ``(0.9, 1.0, 1.1)``)."""
    values = tuple(float(s) for s in scales)
    if not values or min(values) <= 0:
        raise ValueError(f"scales must be a non-empty list of positive factors, got {scales!r}")
    return RandomScale(values)


def random_rotate(angles: Sequence[float]) -> RandomRotate:
    """Random rotation by an angle in degrees from ``angles`` (e.g. ``range(-10, 11)``)."""
    values = tuple(float(a) for a in angles)
    if not values:
        raise ValueError("angles must be a non-empty list of angles in degrees")
    return RandomRotate(values)


def standard_transforms(size: tuple[int, int]) -> tuple:
    """lucid's standard recipe (pad, jitter, scale, rotate, jitter) scaled to ``size = (H, W)``.

    lucid's values (pad 12, jitter 8 and 4) suit 128-224 pixel images; here they shrink in
    proportion so that a 28x28 MNIST input is not swamped by padding.
    """
    unit = max(1, round(min(size) / 16))
    return (
        pad(unit),
        jitter(max(1, unit // 2 + 1)),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(range(-10, 11)),
        jitter(max(1, unit // 3)),
    )


def apply_transforms(transforms: tuple, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Apply ``transforms`` in order; transform ``i`` gets per-image seeds folded with ``i``."""
    seeds = per_image(seeds, tf.shape(images)[0])
    for i, transform in enumerate(transforms):
        images = transform(images, fold_in(seeds, i))
    return images


def per_image(seeds: tf.Tensor, n) -> tf.Tensor:
    """``(N, 2)`` per-image seeds; a single ``(2,)`` seed gives image ``i`` the key ``i``."""
    seeds = tf.convert_to_tensor(seeds, tf.int32)
    if seeds.shape.rank == 2:
        return seeds
    first = fold_in(seeds[None], seeds[1])[0, 0]
    return tf.stack([tf.fill([n], first), tf.range(n, dtype=tf.int32)], axis=1)


def fold_in(seeds: tf.Tensor, data) -> tf.Tensor:
    """New ``(N, 2)`` seeds from ``seeds`` and an int (or int32 tensor) ``data``."""
    data = tf.bitcast(tf.cast(data, tf.int32), tf.uint32)
    first = _fmix(_xor(tf.bitcast(seeds[:, 0], tf.uint32), _fmix(data + _u32(_GOLDEN))))
    return tf.stack([tf.bitcast(first, tf.int32), seeds[:, 1]], axis=1)


def uniform(seeds: tf.Tensor, k: int) -> tf.Tensor:
    """``(N, k)`` float32 draws in [0, 1); row ``n`` depends only on ``seeds[n]``.

    A counter-based generator: MurmurHash3's finaliser over (seed, key, draw index), a
    bijective 32-bit mixer with full avalanche, so neighbouring keys give unrelated draws.
    """
    s = tf.bitcast(tf.convert_to_tensor(seeds, tf.int32), tf.uint32)
    golden = _u32(_GOLDEN)
    index = tf.cast(tf.range(1, k + 1), tf.uint32)[None, :]
    h = _fmix(_xor(s[:, :1], _fmix(s[:, 1:] * golden + _fmix(index * golden))))
    return tf.cast(_shift(h, 8), tf.float32) / float(1 << 24)


def get_transforms(spec, size: tuple[int, int]) -> tuple:
    """``"standard"``, ``None`` or a list of transforms -> a tuple of transforms."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        if spec != "standard":
            raise ValueError(f"transforms must be 'standard', None or a list, got {spec!r}")
        return standard_transforms(size)
    transforms = tuple(spec)
    for t in transforms:
        if not callable(t):
            raise TypeError(f"each transform must be callable as t(images, seeds), got {t!r}")
    return transforms


# --------------------------------------------------------------------------------------------
def _affine(images: tf.Tensor, matrices: tf.Tensor) -> tf.Tensor:
    """Resample ``images`` at ``matrices`` (output -> input coordinates), reflected borders."""
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=matrices,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return tf.cast(tf.ensure_shape(out, images.shape), images.dtype)


_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: spreads consecutive integers over 32 bits


def _u32(value: int) -> tf.Tensor:
    return tf.constant(value, tf.uint32)


def _xor(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.bitwise.bitwise_xor(a, b)


def _shift(h: tf.Tensor, bits: int) -> tf.Tensor:
    return tf.bitwise.right_shift(h, _u32(bits))


def _fmix(h: tf.Tensor) -> tf.Tensor:
    h = _xor(h, _shift(h, 16)) * _u32(0x85EBCA6B)
    h = _xor(h, _shift(h, 13)) * _u32(0xC2B2AE35)
    return _xor(h, _shift(h, 16))


def _choose(values: tuple[float, ...], seeds: tf.Tensor) -> tf.Tensor:
    index = tf.cast(tf.floor(uniform(seeds, 1)[:, 0] * len(values)), tf.int32)
    return tf.gather(tf.constant(values, tf.float32), tf.minimum(index, len(values) - 1))


def _centre(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.cast(tf.shape(images), tf.float32)
    return (shape[1] - 1) / 2, (shape[2] - 1) / 2


def _non_negative(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value
