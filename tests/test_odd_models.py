"""Every vizkit method on every kind of odd model: it works, or it raises a clear error saying why.

Odd models: a nested backbone, a subclassed model, multi-input and multi-output models, a model
ending in logits, one ending in a ``Softmax`` layer, mixed-precision float16 and bfloat16 models,
a model with a custom layer, a Sequential that was never built and a fully-convolutional RGB
model. Where a method works, the result has the documented shape, range and finite values;
known answers check that mixed precision and the logits bypass give the float32/logits answer.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_close_f32, chain_terms

import vizkit

SIZE = 12
X = np.random.default_rng(0).random((2, SIZE, SIZE, 1), dtype=np.float32)


# -- the odd models -----------------------------------------------------------------------------
def _head(x, *, softmax: bool = True, name: str = "out"):
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.layers.Dense(3, activation="softmax" if softmax else None, name=name)(g)


def nested():
    inner_in = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inner_in)
    h = keras.layers.Conv2D(5, 3, name="conv_b")(h)
    backbone = keras.Model(inner_in, h, name="backbone")
    inp = keras.Input((SIZE, SIZE, 1))
    y = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(inp))
    out = keras.layers.Dense(3, activation="softmax", name="out")(y)
    return keras.Model(inp, out, name="nested")


class Subclassed(keras.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")
        self.gap = keras.layers.GlobalAveragePooling2D(name="gap")
        self.out = keras.layers.Dense(3, name="out")

    def call(self, x):
        return self.out(self.gap(self.conv(x)))


def subclassed():
    model = Subclassed(name="subclassed")
    model(X[:1])  # built by calling it, as users do
    return model


def multi_input():
    image, extra = keras.Input((SIZE, SIZE, 1), name="image"), keras.Input((4,), name="extra")
    h = keras.layers.Conv2D(4, 3, name="conv")(image)
    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(h), extra])
    return keras.Model([image, extra], keras.layers.Dense(3, name="out")(h), name="multi_input")


def multi_output():
    inp = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outs = [keras.layers.Dense(3, name="cls")(g), keras.layers.Dense(1, name="reg")(g)]
    return keras.Model(inp, outs, name="multi_output")


def logits():
    inp = keras.Input((SIZE, SIZE, 1))
    return keras.Model(inp, _head(inp, softmax=False), name="logits")


def softmax_layer():
    inp = keras.Input((SIZE, SIZE, 1))
    out = keras.layers.Softmax(name="softmax")(_head(inp, softmax=False, name="dense"))
    return keras.Model(inp, out, name="softmax_layer")


def _mixed(policy: str):
    def build():
        old = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            inp = keras.Input((SIZE, SIZE, 1))
            h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
            g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
            # Keras' advice for mixed precision: keep the output layer in float32.
            out = keras.layers.Dense(3, activation="softmax", name="out", dtype="float32")(g)
            return keras.Model(inp, out, name=policy)
        finally:
            keras.config.set_dtype_policy(old)

    return build


@keras.saving.register_keras_serializable("vizkit_reliability")
class Scale(keras.layers.Layer):
    """A custom layer: a learned per-channel scale."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


def custom_layer():
    inp = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(Scale(name="scale")(h))
    out = keras.layers.Dense(3, activation="softmax", name="out")(g)
    return keras.Model(inp, out, name="custom_layer")


def unbuilt_sequential():
    layers = [
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, name="out"),
    ]
    return keras.Sequential(layers, name="unbuilt")


def fully_conv_rgb():
    inp = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="out")(g), name="fully_conv")


BUILDERS = {
    "nested": nested,
    "subclassed": subclassed,
    "multi_input": multi_input,
    "multi_output": multi_output,
    "logits": logits,
    "softmax_layer": softmax_layer,
    "float16": _mixed("mixed_float16"),
    "bfloat16": _mixed("mixed_bfloat16"),
    "custom_layer": custom_layer,
    "unbuilt_sequential": unbuilt_sequential,
    "fully_conv_rgb": fully_conv_rgb,
}
LAYER = {"nested": "backbone/conv"}  # the conv layer to use; "conv" for the others
# Models a method cannot handle, and the words the error must contain to say why.
REFUSED = {
    "multi_input": "2 inputs",
    "unbuilt_sequential": "build it first",
}


@functools.cache
def _bfloat16_convolution_error() -> str | None:
    """Why a plain Keras bfloat16 convolution cannot run here, or None when it can.

    TensorFlow hands bfloat16 convolutions to oneDNN when the CPU reports AVX-512 BF16; with
    oneDNN capped below AVX-512 (``ONEDNN_MAX_CPU_ISA=AVX2``, how the suite is checked for
    narrower CPUs) oneDNN has no bfloat16 convolution and every such model fails, vizkit or not.
    A real AVX2 CPU does not report BF16, so TensorFlow uses its Eigen kernel there (as with
    ``TF_ENABLE_ONEDNN_OPTS=0``) and these tests run.
    """
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        inp = keras.Input((SIZE, SIZE, 1))
        keras.Model(inp, keras.layers.Conv2D(1, 3)(inp))(X[:1])
    except tf.errors.AbortedError as error:
        if "could not create a primitive" not in str(error):
            raise
        return "oneDNN: could not create a primitive descriptor for the convolution"
    finally:
        keras.config.set_dtype_policy(old)
    return None


def model(name: str) -> keras.Model:
    if name == "bfloat16" and (error := _bfloat16_convolution_error()):
        pytest.skip(f"bfloat16 convolutions do not run on this CPU/oneDNN setting ({error})")
    return _model(name)


@functools.cache
def _model(name: str) -> keras.Model:
    keras.utils.set_random_seed(1)
    return BUILDERS[name]()


# -- every method -------------------------------------------------------------------------------
def _range01(a) -> None:
    assert a.min() >= 0.0 and a.max() <= 1.0


def _maps(result):
    assert isinstance(result, dict) and result
    assert all(v.shape[0] == len(X) and v.dtype == np.float32 for v in result.values())


def _images(shape):
    def check(result):
        assert result.shape[: len(shape)] == shape, result.shape
        _range01(result) if result.dtype == np.float32 else None

    return check


def _shape(shape, *, unit=False):
    def check(result):
        assert result.shape == shape, result.shape
        assert result.dtype == np.float32
        if unit:
            _range01(result)

    return check


def _top(result):
    indices, scores = result
    assert sorted(indices.tolist()) == [0, 1] and scores[0] >= scores[1]


def _diagnosis(result):
    assert result.n_images == len(X) and result.layers and "Diagnosis" in result.summary()


def _export(result):
    assert Path(result).is_file() and Path(result).name == "index.html"


H = W = SIZE
METHODS = {
    "filters": (lambda m, L: vizkit.filters(m, L), lambda r: _range01(r)),
    "feature_maps": (lambda m, L: vizkit.feature_maps(m, X), _maps),
    "hypercolumns": (lambda m, L: vizkit.hypercolumns(m, X, L), _shape((2, H, W, 4))),
    "maximize": (
        lambda m, L: vizkit.maximize(m, L, [0, 1], steps=3, size=(H, W)),
        _images((2, H, W)),
    ),
    "saliency": (lambda m, L: vizkit.saliency(m, X), _shape((2, H, W))),
    "smoothgrad": (
        lambda m, L: vizkit.saliency(m, X, method="smoothgrad", samples=3),
        _shape((2, H, W)),
    ),
    "integrated": (
        lambda m, L: vizkit.saliency(m, X, 0, method="integrated", steps=4, warn=False),
        _shape((2, H, W)),
    ),
    "guided": (lambda m, L: vizkit.saliency(m, X, method="guided"), _shape((2, H, W))),
    "gradcam": (lambda m, L: vizkit.gradcam(m, X), _shape((2, H, W), unit=True)),
    "gradcam_layer": (lambda m, L: vizkit.gradcam(m, X, layer=L), _shape((2, H, W), unit=True)),
    "occlusion": (lambda m, L: vizkit.occlusion(m, X, patch=4), _shape((2, H, W))),
    "deepdream": (
        lambda m, L: vizkit.deepdream(m, X[0], L, octaves=1, steps=2),
        _images((H, W)),
    ),
    "top_activating": (lambda m, L: vizkit.top_activating(m, L, 0, X, k=2), _top),
    "diagnose": (lambda m, L: vizkit.diagnose(m, X), _diagnosis),
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_method_on_odd_model(name, method):
    run, check = METHODS[method]
    m = model(name)
    layer = LAYER.get(name, "conv")
    if name in REFUSED and not (method == "filters" and name == "multi_input"):
        with pytest.raises((ValueError, TypeError)) as info:
            run(m, layer)
        message = str(info.value)
        assert REFUSED[name] in message and repr(m.name) in message, message
        return
    result = run(m, layer)
    arrays = result.values() if isinstance(result, dict) else [result]
    for a in arrays:
        if isinstance(a, np.ndarray):
            assert np.all(np.isfinite(a)), f"{method} on {name} gave non-finite values"
    check(result)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDERS))
def test_export_on_odd_model(name):
    m = model(name)
    out = tempfile.mkdtemp(prefix=f"vizkit-odd-{name}-")

    def run():
        return vizkit.export(m, X[:1], out, methods=["gradcam"], progress=False, diagnose=False)

    if name in REFUSED:
        with pytest.raises((ValueError, TypeError), match=REFUSED[name]):
            run()
        return
    _export(run())


# -- known answers --------------------------------------------------------------------------------
def _twin(source: keras.Model, target: keras.Model) -> keras.Model:
    target.set_weights([np.asarray(w, np.float32) for w in source.get_weights()])
    return target


def test_softmax_layer_bypass_equals_logits_model():
    # logits=True on a model ending in a Softmax layer must give the logits twin's gradients.
    soft = model("softmax_layer")
    twin = _twin(soft, logits())
    # The same weights in another graph: the kernels may add up in another order. Gradients
    # go through the 3x3 convolution, the 10x10 average and the dense layer's 4 inputs.
    n_terms = chain_terms(twin) + 10 * 10
    expected = vizkit.saliency(twin, X, [0, 2])
    assert_close_f32(vizkit.saliency(soft, X, [0, 2], logits=True), expected, n_terms=n_terms)
    cam = vizkit.gradcam(twin, X, [0, 2])  # in [0, 1]
    assert_close_f32(vizkit.gradcam(soft, X, [0, 2]), cam, n_terms=n_terms, scale=1.0)


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
@pytest.mark.parametrize("method", ["saliency", "gradcam", "hypercolumns"])
def test_mixed_precision_matches_float32(policy, method):
    # Regression: Grad-CAM raised "the class score does not depend on layer" for float16 models
    # because the recorded activation was a float32 copy off the gradient path.
    low = model(policy)
    full = _twin(low, _mixed("float32")())
    run = {
        "saliency": lambda m: vizkit.saliency(m, X, [0, 1]),
        "gradcam": lambda m: vizkit.gradcam(m, X, [0, 1]),
        "hypercolumns": lambda m: vizkit.hypercolumns(m, X, "conv"),
    }[method]
    a, b = run(low).ravel(), run(full).ravel()
    tolerance = 0.05 if policy == "bfloat16" else 0.01  # bfloat16 keeps 8 bits of mantissa
    assert np.corrcoef(a, b)[0, 1] > 0.99
    np.testing.assert_allclose(a, b, atol=tolerance * np.abs(b).max())


def test_subclassed_model_matches_functional_twin():
    sub = model("subclassed")
    inp = keras.Input((SIZE, SIZE, 1))
    twin = _twin(sub, keras.Model(inp, _head(inp, softmax=False)))
    n_terms = chain_terms(twin) + 10 * 10  # as in test_softmax_layer_bypass_equals_logits_model
    expected = vizkit.saliency(twin, X, 1)
    assert_close_f32(vizkit.saliency(sub, X, 1), expected, n_terms=n_terms)
    cam = vizkit.gradcam(twin, X, 1)  # in [0, 1]
    assert_close_f32(vizkit.gradcam(sub, X, 1), cam, n_terms=n_terms, scale=1.0)
