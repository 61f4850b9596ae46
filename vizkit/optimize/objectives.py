"""Objectives for feature visualisation: what the optimisation pushes up, composable with + and *.

An :class:`Objective` is a weighted sum of *terms*. Each term reads the captured activations of
one layer (or the model's output) and returns one score per image, so objectives on different
layers combine freely (``channel("conv2", 3) + 0.5 * layer_mean("conv1")``) and all the layers
they need are captured in a single forward pass. A term whose ``unit`` is ``None`` takes the unit
of each image from the per-image ``units`` vector of the optimisation loop; that is how
:func:`vizkit.maximize` optimises many units as one batch with one compiled function.

Objectives are immutable and hashable, so they serve as cache keys for compiled functions.
The design follows lucid's ``optvis.objectives`` and xplique's ``Objective`` (Olah et al., 2017,
"Feature Visualization", Distill).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ..core.checks import positive_int

LayerSpec = str | int


class Objective:
    """A weighted sum of terms; call it to get one score per image.

    Supports ``a + b``, ``a - b``, ``-a``, ``w * a``, ``a * w`` and ``a / w`` with float ``w``.
    """

    def __init__(self, parts: tuple[tuple[float, object], ...]):
        self.parts = tuple((float(w), term) for w, term in parts)

    # --- algebra ---------------------------------------------------------------------------
    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.parts + other.parts)

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-1.0) * other

    def __neg__(self) -> Objective:
        return (-1.0) * self

    def __mul__(self, weight: float) -> Objective:
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)):
            return NotImplemented
        return Objective(tuple((w * float(weight), t) for w, t in self.parts))

    __rmul__ = __mul__

    def __truediv__(self, weight: float) -> Objective:
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)):
            return NotImplemented
        return self * (1.0 / float(weight))

    def __eq__(self, other) -> bool:
        return isinstance(other, Objective) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __repr__(self) -> str:
        return " + ".join(f"{w:g} * {t!r}" for w, t in self.parts)

    # --- evaluation ------------------------------------------------------------------------
    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """Layer specs whose activations the terms read (without duplicates, in order)."""
        specs = [t.layer for _, t in self.parts if getattr(t, "layer", None) is not None]
        return tuple(dict.fromkeys(specs))

    @property
    def needs_logits(self) -> bool:
        """True when a term reads class logits, so the final softmax must be bypassed."""
        return any(isinstance(t, _ClassLogit) for _, t in self.parts)

    def __call__(self, acts: dict, outputs: list, units: tf.Tensor) -> tf.Tensor:
        """Scores ``(N,)`` from ``acts`` (``{layer spec: activation}``), model outputs and units."""
        total = None
        for weight, term in self.parts:
            score = weight * term(acts, outputs, units)
            total = score if total is None else total + score
        return total


# --- constructors --------------------------------------------------------------------------
def channel(layer: LayerSpec, unit: int | None = None, *, prefix_tokens: int = 0) -> Objective:
    """Mean activation of channel ``unit`` over all positions of ``layer`` (conv or dense).

    For a transformer token layer ``(N, T, C)``, ``prefix_tokens`` leading tokens (class,
    distillation, register tokens) are left out, so the mean runs over the patch tokens.
    """
    prefix = positive_int(prefix_tokens, "prefix_tokens", minimum=0)
    return Objective(((1.0, _Channel(layer, _unit(unit), prefix)),))


def neuron(
    layer: LayerSpec, unit: int | None = None, y: int | None = None, x: int | None = None
) -> Objective:
    """Activation of channel ``unit`` at one position ``(y, x)``; the centre by default."""
    for name, value in (("y", y), ("x", x)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an int position or None, got {value!r}")
    return Objective(((1.0, _Neuron(layer, _unit(unit), y, x)),))


def dense_unit(layer: LayerSpec, unit: int | None = None) -> Objective:
    """Activation of unit ``unit`` of a layer with a ``(N, units)`` output."""
    return Objective(((1.0, _Dense(layer, _unit(unit))),))


def class_logit(unit: int | None = None, *, output: int = 0) -> Objective:
    """The logit of class ``unit`` (a final softmax is bypassed, ``Tap(logits=True)``)."""
    return Objective(((1.0, _ClassLogit(_unit(unit), int(output))),))


def direction(layer: LayerSpec, vector) -> Objective:
    """Mean over positions of the projection of ``layer``'s activation on ``vector`` (C,)."""
    vec = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(vec))
    if vec.size == 0 or not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"vector must be a finite non-zero 1-D array, got {vector!r}")
    return Objective(((1.0, _Direction(layer, tuple((vec / norm).tolist()))),))


def layer_mean(layer: LayerSpec) -> Objective:
    """Mean activation of the whole layer (DeepDream's objective)."""
    return Objective(((1.0, _LayerMean(layer)),))


def layer_l2(layer: LayerSpec) -> Objective:
    """Mean squared activation of the whole layer (the original DeepDream L2 objective)."""
    return Objective(((1.0, _LayerL2(layer)),))


def diversity(layer: LayerSpec) -> Objective:
    """Minus the mean cosine similarity of each image's Gram matrix to the others' in the batch.

    Pushes a batch of images towards different styles of ``layer`` (lucid's diversity term).
    Zero for a batch of one image.
    """
    return Objective(((1.0, _Diversity(layer)),))


def gram_loss(layer: LayerSpec, target) -> Objective:
    """Style distance of ``layer`` to a target Gram matrix ``(C, C)`` (Gatys et al., 2016).

    ``mean((G - A)**2) / mean(A**2)`` with ``G`` the :func:`gram_matrix` of the image's
    activations and ``A`` the target: relative, so weights do not depend on the activation
    scale of the layer. Minimise it (use ``-gram_loss`` in a maximised objective).
    """
    return Objective(((1.0, _GramLoss(layer, *_constant(target, 2, "target Gram matrix"))),))


def feature_loss(layer: LayerSpec, target) -> Objective:
    """Content distance of ``layer`` to target activations (the layer's output shape without
    the batch axis): ``mean((F - P)**2) / mean(P**2)`` (Gatys et al., 2016, relative)."""
    return Objective(((1.0, _FeatureLoss(layer, *_constant(target, None, "target features"))),))


def gram_matrix(act: tf.Tensor) -> tf.Tensor:
    """Gram matrices ``(N, C, C)`` of activations ``(N, ..., C)``: ``F^T F / positions``, with
    ``F`` the ``(positions, C)`` matrix of each image (channel co-activations averaged over
    positions, so images of any size compare)."""
    flat = tf.reshape(act, (tf.shape(act)[0], -1, act.shape[-1]))
    positions = tf.cast(tf.shape(flat)[1], act.dtype)
    return tf.matmul(flat, flat, transpose_a=True) / positions


def _constant(values, rank: int | None, name: str) -> tuple[str, object]:
    """``(digest, array)`` of a target: compared and hashed by its digest."""
    import hashlib

    arr = np.ascontiguousarray(values, dtype=np.float32)
    if rank is not None and arr.ndim != rank:
        raise ValueError(f"{name} must have {rank} dimensions, got shape {arr.shape}")
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty finite array, got shape {arr.shape}")
    digest = hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()
    return digest, arr


def _unit(unit) -> int | None:
    if unit is None:
        return None
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or unit < 0:
        raise ValueError(f"unit must be a non-negative int or None, got {unit!r}")
    return int(unit)


# --- terms ---------------------------------------------------------------------------------
def _pick(act: tf.Tensor, unit: int | None, units: tf.Tensor) -> tf.Tensor:
    """Channel ``unit`` (or ``units[i]`` for image ``i``) of ``act`` -> ``(N, positions)``."""
    flat = tf.reshape(act, (tf.shape(act)[0], -1, act.shape[-1]))
    if unit is not None:
        return flat[:, :, unit]
    return tf.gather(flat, units, axis=2, batch_dims=1)


@dataclass(frozen=True)
class _Channel:
    layer: LayerSpec
    unit: int | None
    prefix: int = 0

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        if self.prefix:
            if act.shape.rank != 3:
                raise ValueError(
                    f"prefix_tokens applies to (N, T, C) token layers, {self.layer!r} has "
                    f"shape {act.shape}"
                )
            act = act[:, self.prefix :, :]
        return tf.reduce_mean(_pick(act, self.unit, units), axis=1)


@dataclass(frozen=True)
class _Neuron:
    layer: LayerSpec
    unit: int | None
    y: int | None
    x: int | None

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        if act.shape.rank != 4:
            raise ValueError(f"neuron needs a 4-D layer output, {self.layer!r} has {act.shape}")
        y = act.shape[1] // 2 if self.y is None else self.y
        x = act.shape[2] // 2 if self.x is None else self.x
        return _pick(act[:, y : y + 1, x : x + 1, :], self.unit, units)[:, 0]


@dataclass(frozen=True)
class _Dense:
    layer: LayerSpec
    unit: int | None

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        if act.shape.rank != 2:
            raise ValueError(
                f"dense_unit needs a (N, units) layer output, {self.layer!r} has shape {act.shape}"
            )
        return _pick(act, self.unit, units)[:, 0]


@dataclass(frozen=True)
class _ClassLogit:
    unit: int | None
    output: int = 0
    layer = None

    def __call__(self, acts, outputs, units):
        out = outputs[self.output]
        logits = tf.reshape(out, (tf.shape(out)[0], int(np.prod(out.shape[1:]))))
        return _pick(logits, self.unit, units)[:, 0]


@dataclass(frozen=True)
class _Direction:
    layer: LayerSpec
    vector: tuple[float, ...]

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        if act.shape[-1] != len(self.vector):
            raise ValueError(
                f"direction vector has {len(self.vector)} entries but layer {self.layer!r} has "
                f"{act.shape[-1]} channels"
            )
        flat = tf.reshape(act, (tf.shape(act)[0], -1, act.shape[-1]))
        return tf.reduce_mean(tf.tensordot(flat, tf.constant(self.vector, tf.float32), 1), axis=1)


@dataclass(frozen=True)
class _LayerMean:
    layer: LayerSpec

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        return tf.reduce_mean(tf.reshape(act, (tf.shape(act)[0], -1)), axis=1)


@dataclass(frozen=True)
class _LayerL2:
    layer: LayerSpec

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        return tf.reduce_mean(tf.reshape(tf.square(act), (tf.shape(act)[0], -1)), axis=1)


@dataclass(frozen=True)
class _Diversity:
    layer: LayerSpec

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        flat = tf.reshape(act, (tf.shape(act)[0], -1, act.shape[-1]))
        gram = tf.matmul(flat, flat, transpose_a=True)  # (N, C, C) style of each image
        gram = tf.reshape(gram, (tf.shape(gram)[0], -1))
        gram = tf.math.l2_normalize(gram, axis=1)
        sim = tf.matmul(gram, gram, transpose_b=True)  # cosine similarity between images
        n = tf.cast(tf.shape(sim)[0], tf.float32)
        others = tf.reduce_sum(sim, axis=1) - tf.linalg.diag_part(sim)
        return -others / tf.maximum(n - 1.0, 1.0)


@dataclass(frozen=True)
class _GramLoss:
    layer: LayerSpec
    digest: str
    target: np.ndarray = field(compare=False, hash=False, repr=False)

    def __call__(self, acts, outputs, units):
        target = tf.constant(self.target)
        diff = gram_matrix(acts[self.layer]) - target[None]
        return tf.reduce_mean(tf.square(diff), axis=[1, 2]) / _mean_square(target)


@dataclass(frozen=True)
class _FeatureLoss:
    layer: LayerSpec
    digest: str
    target: np.ndarray = field(compare=False, hash=False, repr=False)

    def __call__(self, acts, outputs, units):
        act = acts[self.layer]
        target = tf.constant(self.target)
        if tuple(act.shape[1:]) != tuple(target.shape):
            raise ValueError(
                f"feature_loss target has shape {tuple(target.shape)} but layer {self.layer!r} "
                f"outputs {tuple(act.shape[1:])} per image"
            )
        axes = list(range(1, act.shape.rank))
        return tf.reduce_mean(tf.square(act - target[None]), axis=axes) / _mean_square(target)


def _mean_square(target: tf.Tensor) -> tf.Tensor:
    # A silent target (all zeros) would divide by zero: fall back to the absolute distance.
    return tf.maximum(tf.reduce_mean(tf.square(target)), 1e-12)
