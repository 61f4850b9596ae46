"""Shared plumbing for every method: intercepted forward passes, compiled gradients, chunking.

Every method in vizkit runs the model through :func:`forward`. While a forward pass is traced we
temporarily patch *instance* attributes of some layers (``call`` or ``activation``) to

* record the outputs of chosen layers (one pass for any number of layers, nested models too),
* record the attention weights of chosen ``MultiHeadAttention`` layers,
* bypass a final softmax so that scores are logits,
* swap ReLU gradients for guided backprop or deconvnet rules.

The patches exist only while Python traces the graph and are always removed afterwards, so the
user's model is never mutated. Compiled functions are cached per model with fixed input
signatures, so repeated calls do not retrace.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from .checks import positive_int
from .layers import iter_layers

DEFAULT_BATCH_SIZE = 32
MAX_DEFAULT_BATCH_SIZE = 128
PIXELS_PER_CALL = 32 * 112 * 112 * 3
RELU_MODES = ("normal", "guided", "deconv")


@dataclass(frozen=True)
class Tap:
    """What to change in a forward pass while it is traced.

    Attributes
    ----------
    capture : tuple of str
        Layer paths whose outputs are recorded.
    logits : bool
        Replace a final softmax by the identity so that class scores are logits.
    relu : {"normal", "guided", "deconv"}
        Gradient rule for ReLU activations.
    preprocess : callable, str or None
        Applied to the input inside the graph before the model; a name is a preset of
        :mod:`vizkit.preprocessing` (``"caffe"``, ``"torch"``, ``"resnet50"``, ...).
    attention : tuple of str
        Paths of ``MultiHeadAttention`` layers whose attention weights ``(N, heads, T, S)``
        are recorded (under :func:`attention_key`), computed by the layer's own code.
    """

    capture: tuple[str, ...] = ()
    logits: bool = False
    relu: str = "normal"
    preprocess: Callable | None = field(default=None, compare=True, hash=True)
    attention: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.relu not in RELU_MODES:
            raise ValueError(f"relu must be one of {RELU_MODES}, got {self.relu!r}")
        if isinstance(self.preprocess, str):
            from ..preprocessing import get_preset

            preset = get_preset(self.preprocess)
            object.__setattr__(self, "preprocess", None if preset.name == "none" else preset)
        if self.preprocess is not None and not callable(self.preprocess):
            raise TypeError(
                f"preprocess must be callable or None, got {type(self.preprocess).__name__}"
            )


def forward(
    model: keras.Model, x: tf.Tensor, tap: Tap = Tap()
) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
    """Run ``model`` on ``x`` with the changes ``tap`` asks for.

    Returns
    -------
    outputs : list of tf.Tensor
        The model's outputs (always a list), in float32.
    captured : dict
        ``{path: output}`` of every layer in ``tap.capture``, and ``{attention_key(path):
        weights}`` of every layer in ``tap.attention``, in float32.
    """
    captured: dict[str, tf.Tensor] = {}
    with _patched(model, tap, captured):
        inputs = tap.preprocess(x) if tap.preprocess is not None else x
        out = model(inputs, training=False)
    outputs = [tf.cast(o, tf.float32) for o in tf.nest.flatten(out)]
    keys = (*tap.capture, *(attention_key(p) for p in tap.attention))
    missing = [k.removesuffix(_ATTENTION) for k in keys if k not in captured]
    if missing:
        raise ValueError(
            f"layers {missing} were not called in the forward pass of model {model.name!r}; "
            "they may belong to a branch that does not reach the outputs"
        )
    return outputs, {k: tf.cast(captured[k], tf.float32) for k in keys}


def attention_key(path: str) -> str:
    """Key of the attention weights of layer ``path`` in :func:`forward`'s ``captured``."""
    return path + _ATTENTION


def compiled(
    model: keras.Model, key: tuple, make: Callable[[], tuple[Callable, Sequence[tf.TensorSpec]]]
):
    """A ``tf.function`` cached on ``model`` under ``key``.

    ``make()`` returns ``(python_function, input_signature)``; it is only called on a cache miss.
    The cache dies with the model.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}: {model!r:.80}")
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        fn, signature = make()
        per_model[key] = tf.function(fn, input_signature=list(signature), reduce_retracing=True)
    return per_model[key]


def image_spec(x: np.ndarray) -> tf.TensorSpec:
    """Signature for a batch like ``x`` with a free batch dimension."""
    return tf.TensorSpec((None, *x.shape[1:]), tf.float32)


def map_batches(fn: Callable, arrays: Sequence[np.ndarray], batch_size: int | None = None):
    """Apply a compiled ``fn`` to aligned chunks of ``arrays`` and concatenate along axis 0.

    ``fn`` returns a tensor, a tuple of tensors or a dict of tensors; the result has the same
    structure with NumPy arrays. Memory stays bounded by one chunk of activations.
    """
    size = check_batch_size(batch_size)
    n = len(arrays[0])
    if n == 0:
        raise ValueError("nothing to compute: the batch is empty")
    result = None
    for start in range(0, n, size):
        chunk = [tf.convert_to_tensor(a[start : start + size]) for a in arrays]
        part = tf.nest.map_structure(lambda t: t.numpy(), fn(*chunk))
        if start == 0 and size >= n:
            return part  # one chunk: .numpy() already made writable arrays of their own
        if result is None:
            # Fill preallocated outputs: one copy, and never the chunks and the result at once.
            result = tf.nest.map_structure(lambda a: np.empty((n, *a.shape[1:]), a.dtype), part)
        rows = slice(start, start + len(tf.nest.flatten(part)[0]))
        for out, values in zip(tf.nest.flatten(result), tf.nest.flatten(part), strict=True):
            out[rows] = values
    return result


def check_batch_size(batch_size: int | None, example: np.ndarray | None = None) -> int:
    """Validate a chunk size; ``None`` means :func:`default_batch_size` of ``example`` (32
    without one)."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE if example is None else default_batch_size(example)
    return positive_int(batch_size, "batch_size")


def default_batch_size(example: np.ndarray) -> int:
    """Model inputs per compiled call for images like ``example`` ``(N, H, W, C)``: 32, and up
    to 128 for small images, so that a call carries about as many pixel values as 32 images of
    112x112x3. Each call costs about a millisecond of Python and TensorFlow dispatch whatever
    its size: for MNIST-sized inputs 32 copies a call spend more time dispatching than
    computing (occlusion of one 28x28 digit is 169 copies)."""
    per_input = max(1, int(np.prod(example.shape[1:], dtype=np.int64)))
    return int(min(MAX_DEFAULT_BATCH_SIZE, max(DEFAULT_BATCH_SIZE, PIXELS_PER_CALL // per_input)))


@dataclass(frozen=True)
class ClassScore:
    """Objective: the score of class ``aux[i]`` for image ``i`` (logit when ``Tap.logits``)."""

    output: int = 0

    def __call__(self, outputs, captured, aux):
        scores = tf.reshape(outputs[self.output], (tf.shape(outputs[self.output])[0], -1))
        return tf.gather(scores, aux, axis=1, batch_dims=1)


@dataclass(frozen=True)
class UnitScore:
    """Objective: mean activation of unit/channel ``aux[i]`` of layer ``path`` for image ``i``."""

    path: str

    def __call__(self, outputs, captured, aux):
        act = captured[self.path]
        act = tf.reshape(act, (tf.shape(act)[0], -1, tf.shape(act)[-1]))
        return tf.reduce_mean(tf.gather(act, aux, axis=2, batch_dims=1), axis=1)


def gradient_fn(model: keras.Model, objective: Callable, tap: Tap, example: np.ndarray):
    """Compiled ``f(x, aux) -> (score (N,), d score / d x (N, ...))`` for ``objective``.

    ``objective(outputs, captured, aux)`` returns one score per image; ``aux`` is an int32 vector
    (class or unit index per image). Every gradient method builds on this one function.
    """

    def make():
        def fn(x, aux):
            return score_and_gradient(model, objective, tap, x, aux)

        return fn, (image_spec(example), tf.TensorSpec((None,), tf.int32))

    return compiled(model, ("gradient", objective, tap), make)


def score_and_gradient(
    model: keras.Model, objective: Callable, tap: Tap, x: tf.Tensor, aux: tf.Tensor
):
    """Traceable ``(score (N,), d score / d x)`` for a batch ``x``; the body of every gradient
    method (call it inside a compiled function, e.g. on noisy copies or interpolation points)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs, captured = forward(model, x, tap)
        score = objective(outputs, captured, aux)
    return score, tape.gradient(score, x)


def activations_fn(model: keras.Model, tap: Tap, example: np.ndarray):
    """Compiled ``f(x) -> {path: activation}`` for the layers in ``tap.capture`` (one pass)."""

    def make():
        def fn(x):
            return forward(model, x, tap)[1]

        return fn, (image_spec(example),)

    return compiled(model, ("activations", tap), make)


def predict_fn(model: keras.Model, tap: Tap, example: np.ndarray, output: int = 0):
    """Compiled ``f(x) -> model output`` (float32, logits when ``tap.logits``)."""

    def make():
        def fn(x):
            return forward(model, x, tap)[0][output]

        return fn, (image_spec(example),)

    return compiled(model, ("predict", tap, output), make)


def final_activation(model: keras.Model) -> str | None:
    """Name of the activation the model's first output ends in (``"softmax"``, ...), if any."""
    found = final_layer(model)
    if found is None:
        return None
    layer, kind = found
    if kind == "layer":
        return "softmax"
    return getattr(layer.activation, "__name__", None)


# --------------------------------------------------------------------------------------------
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ATTENTION = "#attention"


@contextlib.contextmanager
def _patched(model: keras.Model, tap: Tap, captured: dict) -> Iterator[None]:
    undo: list[Callable[[], None]] = []
    try:
        layers = dict(iter_layers(model))
        for path in tap.capture:
            _patch_capture(layers[path], path, captured, undo)
        if tap.attention:  # attention layers may live inside custom blocks (keras-hub)
            deep = dict(iter_layers(model, deep=True))
            for path in tap.attention:
                _patch_attention(deep[path], path, captured, undo)
        if tap.logits:
            _patch_softmax(model, undo)
        if tap.relu != "normal":
            for layer in layers.values():
                _patch_relu(layer, tap.relu, undo)
        yield
    finally:
        for restore in reversed(undo):
            restore()


def _set(layer, attr: str, value, undo: list) -> None:
    had = attr in vars(layer)
    old = vars(layer).get(attr)

    def restore():
        if had:
            object.__setattr__(layer, attr, old)
        else:
            vars(layer).pop(attr, None)

    object.__setattr__(layer, attr, value)
    undo.append(restore)


def _patch_capture(layer, path: str, captured: dict, undo: list) -> None:
    original = layer.call

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        if isinstance(out, tf.Tensor) and out.dtype in (tf.float16, tf.bfloat16):
            # Mixed precision: record a float32 copy and let the rest of the model run on it
            # (the round trip float16 -> float32 -> float16 is exact), so that gradients with
            # respect to the recorded activation exist.
            wide = tf.cast(out, tf.float32)
            captured.setdefault(path, wide)
            return tf.cast(wide, out.dtype)
        captured.setdefault(path, out)
        return out

    _set(layer, "call", call, undo)


def _patch_attention(layer, path: str, captured: dict, undo: list) -> None:
    """Make a ``MultiHeadAttention`` layer compute its weights explicitly and record them.

    The layer's ``_compute_attention`` is Keras' documented override point (called by ``call``
    with the projected query, key and value); asking it for the scores makes it take its
    explicit softmax path instead of the fused kernel, which gives the same output.
    """
    if not isinstance(layer, keras.layers.MultiHeadAttention):
        raise ValueError(
            f"layer {path!r} is a {type(layer).__name__}, not a MultiHeadAttention layer, so it "
            "has no attention weights to record"
        )
    original = layer._compute_attention

    def compute(query, key, value, attention_mask=None, training=None, scores=False, **kw):
        out, weights = original(query, key, value, attention_mask, training, True, **kw)
        captured.setdefault(attention_key(path), weights)
        return out, (weights if scores else None)

    _set(layer, "_compute_attention", compute, undo)
    if getattr(layer, "_flash_attention", False):  # the flash kernel never forms the weights
        _set(layer, "_flash_attention", False, undo)


def final_layer(model):
    """``(layer, "activation" | "layer")`` for a softmax at the end of ``model``'s first output."""
    layer = _output_layer(model)
    while isinstance(layer, keras.Model):
        inner = _output_layer(layer)
        if inner is None:
            break
        layer = inner
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return layer, "layer"
    if (
        getattr(layer, "activation", None) is not None
        and getattr(layer.activation, "__name__", "") == "softmax"
    ):
        return layer, "activation"
    return None


def _output_layer(model):
    outputs = getattr(model, "outputs", None)
    if outputs:
        history = getattr(outputs[0], "_keras_history", None)
        if history is not None:
            return history.operation
    layers = [
        lyr for lyr in getattr(model, "layers", []) if not isinstance(lyr, keras.layers.InputLayer)
    ]
    return layers[-1] if layers else None


def _patch_softmax(model, undo: list) -> None:
    found = final_layer(model)
    if found is None:
        return
    layer, kind = found
    if kind == "layer":
        _set(layer, "call", lambda inputs, *a, **k: inputs, undo)
    else:
        _set(layer, "activation", keras.activations.linear, undo)


def _patch_relu(layer, mode: str, undo: list) -> None:
    rule = _guided_relu if mode == "guided" else _deconv_relu
    if getattr(layer, "activation", None) is keras.activations.relu:
        _set(layer, "activation", rule, undo)
    elif isinstance(layer, keras.layers.ReLU) and _plain_relu_layer(layer):
        _set(layer, "call", lambda inputs, *a, **k: rule(inputs), undo)


def _plain_relu_layer(layer) -> bool:
    return (
        layer.max_value is None
        and float(layer.negative_slope) == 0.0
        and float(layer.threshold) == 0.0
    )


def _guided_relu(x):
    """ReLU whose gradient passes only where both the input and the incoming gradient are positive.

    The plain ReLU stays in the graph (its own gradient masks ``x > 0`` and TensorFlow keeps
    fusing it with the convolution before it); only the incoming gradient is rectified.
    """
    return _rectified_gradient(tf.nn.relu(x))


@tf.custom_gradient
def _rectified_gradient(y):
    """Identity whose backward pass keeps only the positive part of the incoming gradient."""

    def grad(dy):
        return tf.nn.relu(dy)

    return tf.identity(y), grad


@tf.custom_gradient
def _deconv_relu(x):
    """ReLU with the deconvnet backward rule: the incoming gradient rectified, whatever the input."""

    def grad(dy):
        return tf.nn.relu(dy)

    return tf.nn.relu(x), grad
