"""Bad input, tried systematically: every public method gets a ValueError/TypeError naming the
argument, the offending value and what is allowed; never a silent wrong answer or a crash deep in
TensorFlow.

Hypothesis generates the bad values (wrong ranks and shapes, zero sizes, NaN/inf pixels, wrong
channel counts, unknown layers, out-of-range classes/units, patch/stride/steps <= 0, ...); one
tiny model is built once for the whole module. Counts of generated examples are recorded in
``benchmarks/results/reliability.md``.
"""

from __future__ import annotations

import re
import tempfile

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
from helpers import random_images, small_cnn
from hypothesis import HealthCheck, given, settings

import vizkit
from vizkit.core.layers import layer_paths

# Few examples per property: each one is cheap (it fails before any graph is compiled), and the
# strategies below are built so that every example is invalid.
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MODEL = small_cnn()  # 12 x 12 x 1 input, 3 classes; conv1 (4 ch), pool1, conv2 (6 ch), ...
N_CLASSES, CONV1_UNITS = 3, 4
X = random_images(2)
NAMES = layer_paths(MODEL)
OUT_DIR = tempfile.mkdtemp(prefix="vizkit-bad-input-")

# name of the images argument -> function of the images alone
IMAGE_METHODS = {
    "saliency": ("images", lambda im: vizkit.saliency(MODEL, im, 0)),
    "gradcam": ("images", lambda im: vizkit.gradcam(MODEL, im, 0)),
    "occlusion": ("images", lambda im: vizkit.occlusion(MODEL, im, 0, patch=4)),
    "feature_maps": ("images", lambda im: vizkit.feature_maps(MODEL, im)),
    "hypercolumns": ("images", lambda im: vizkit.hypercolumns(MODEL, im, ["conv1"])),
    "top_activating": ("data", lambda im: vizkit.top_activating(MODEL, "conv1", 0, im, k=1)),
    "diagnose": ("data", lambda im: vizkit.diagnose(MODEL, im)),
    "export": (
        "images",
        lambda im: vizkit.export(MODEL, im, OUT_DIR, methods=["filters"], progress=False),
    ),
    "deepdream": ("image", lambda im: vizkit.deepdream(MODEL, im, "conv1", octaves=1, steps=1)),
}


def raises_clearly(call, *fragments: str) -> str:
    """Run ``call``; it must raise ValueError/TypeError whose message holds every fragment."""
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from error message: {message}"
    # The error is raised by vizkit, not deep inside TensorFlow.
    assert "tensorflow" not in message.lower() and "Traceback" not in message
    return message


# -- images ---------------------------------------------------------------------------------
small = st.integers(1, 3)
wrong_rank = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=4),
    hnp.array_shapes(min_dims=5, max_dims=6, min_side=1, max_side=3),
)
# A zero somewhere in an (N, H, W, C) batch.
zero_sized = st.tuples(st.integers(0, 2), st.integers(0, 13), st.integers(0, 13), small).filter(
    lambda s: 0 in s
)
wrong_size = st.tuples(small, st.integers(1, 20), st.integers(1, 20)).filter(
    lambda s: s[1:] != (12, 12)
)
# 1 channel is repeated and 3/4 are converted to luminance; anything else cannot fit.
wrong_channels = st.tuples(small, st.integers(5, 9))


@pytest.mark.parametrize("method", list(IMAGE_METHODS))
@SETTINGS
@given(shape=wrong_rank)
def test_wrong_rank_is_rejected(method, shape):
    name, call = IMAGE_METHODS[method]
    raises_clearly(lambda: call(np.zeros(shape, np.float32)), name, str(shape))


@pytest.mark.parametrize("method", list(IMAGE_METHODS))
@SETTINGS
@given(shape=zero_sized)
def test_zero_sized_images_are_rejected(method, shape):
    name, call = IMAGE_METHODS[method]
    raises_clearly(lambda: call(np.zeros(shape, np.float32)), name, str(shape))


@pytest.mark.parametrize("method", list(IMAGE_METHODS))
@SETTINGS
@given(
    n=small,
    where=st.tuples(st.integers(0, 11), st.integers(0, 11)),
    value=st.sampled_from([np.nan, np.inf, -np.inf, 1e39]),  # 1e39 overflows float32
)
def test_non_finite_pixels_are_rejected(method, n, where, value):
    name, call = IMAGE_METHODS[method]
    images = np.asarray(random_images(n), np.float64)
    images[-1, where[0], where[1], 0] = value
    if method == "deepdream":
        images = images[-1]
    raises_clearly(lambda: call(images), name, "NaN or infinite", "finite")


@pytest.mark.parametrize("method", [m for m in IMAGE_METHODS if m != "deepdream"])
@SETTINGS
@given(shape=wrong_size)
def test_wrong_height_or_width_is_rejected(method, shape):
    # DeepDream is left out on purpose: it works on any image size (tile by tile).
    name, call = IMAGE_METHODS[method]
    n, h, w = shape
    dim, got = ("height", h) if h != 12 else ("width", w)
    raises_clearly(lambda: call(np.zeros((n, h, w, 1), np.float32)), name, f"{dim} {got}", "12")


@pytest.mark.parametrize("method", list(IMAGE_METHODS))
@SETTINGS
@given(shape=wrong_channels)
def test_wrong_channel_count_is_rejected(method, shape):
    name, call = IMAGE_METHODS[method]
    n, c = shape
    images = np.zeros((n, 12, 12, c), np.float32)
    if method == "deepdream":
        images = images[0]
    message = raises_clearly(lambda: call(images), name)
    assert f"{c} channels" in message or str(images.shape) in message, message


@pytest.mark.parametrize("method", list(IMAGE_METHODS))
@pytest.mark.parametrize(
    "images, fragment",
    [
        (np.zeros((1, 12, 12, 1), np.complex64), "complex64"),
        (np.array([["a"]]), "<U1"),
        (np.array([None, None]), "object"),
        ([np.zeros((12, 12)), np.zeros((10, 10))], "ragged"),
    ],
    ids=["complex", "strings", "objects", "ragged"],
)
def test_non_numeric_or_ragged_images_are_rejected(method, images, fragment):
    name, call = IMAGE_METHODS[method]
    raises_clearly(lambda: call(images), name)


def test_complex_images_are_not_silently_truncated():
    # Regression: complex pixels used to be cast to float32, dropping the imaginary part.
    with pytest.raises(TypeError, match=r"real numeric array.*complex64"):
        vizkit.saliency(MODEL, np.zeros((1, 12, 12, 1), np.complex64), 0)


def test_deepdream_wrong_channel_count_is_not_reinterpreted():
    # Regression: a (12, 12, 2) image for a 1-channel model used to come back as (12, 2, 1).
    with pytest.raises(ValueError, match=r"image must be one image .*\(12, 12, 2\)"):
        vizkit.deepdream(MODEL, np.zeros((12, 12, 2), np.float32), "conv1", octaves=1, steps=1)


# -- empty datasets ---------------------------------------------------------------------------
EMPTY = {
    "array": lambda: np.zeros((0, 12, 12, 1), np.float32),
    "list": lambda: [],
    "generator": lambda: iter([]),
    "generator of empty batches": lambda: iter([np.zeros((0, 12, 12, 1), np.float32)] * 2),
}


@pytest.mark.parametrize("kind", list(EMPTY))
@pytest.mark.parametrize("method", ["top_activating", "diagnose"])
def test_empty_datasets_are_rejected(method, kind):
    # These two stream over iterables; an empty stream is an error, not an empty answer.
    name, call = IMAGE_METHODS[method]
    raises_clearly(lambda: call(EMPTY[kind]()), name, "empty")


@pytest.mark.parametrize("method", [m for m in IMAGE_METHODS if m != "deepdream"])
def test_empty_array_is_rejected(method):
    name, call = IMAGE_METHODS[method]
    raises_clearly(lambda: call(np.zeros((0, 12, 12, 1), np.float32)), name, "(0, 12, 12, 1)")


def test_training_on_an_empty_dataset_is_rejected():
    import models
    from models.datasets import Dataset

    empty = np.zeros((0, 12, 12, 1), np.float32)
    labels = np.zeros(0, np.int64)
    data = Dataset(empty, labels, empty, labels, ["a", "b", "c"], "empty")
    raises_clearly(lambda: models.train(small_cnn(), data, epochs=1, batch_size=2), "empty")


# -- targets ----------------------------------------------------------------------------------
TARGET_METHODS = {
    "saliency": lambda t: vizkit.saliency(MODEL, X, t),
    "gradcam": lambda t: vizkit.gradcam(MODEL, X, t),
    "occlusion": lambda t: vizkit.occlusion(MODEL, X, t, patch=4),
}
INT64 = 2**63 - 1
out_of_range = st.one_of(st.integers(-INT64, -1), st.integers(N_CLASSES, INT64))


@pytest.mark.parametrize("method", list(TARGET_METHODS))
@SETTINGS
@given(target=out_of_range, as_list=st.booleans())
def test_out_of_range_target_is_rejected(method, target, as_list):
    value = [0, target] if as_list else target
    raises_clearly(
        lambda: TARGET_METHODS[method](value), "target", str(target), f"0..{N_CLASSES - 1}"
    )


@pytest.mark.parametrize("method", list(TARGET_METHODS))
@SETTINGS
@given(
    target=st.one_of(
        st.floats(allow_nan=True), st.text(max_size=4), st.booleans(), st.just([0.5, 1.0])
    )
)
def test_non_integer_target_is_rejected(method, target):
    raises_clearly(lambda: TARGET_METHODS[method](target), "target", repr(target))


@pytest.mark.parametrize("method", list(TARGET_METHODS))
@SETTINGS
@given(count=st.integers(1, 6).filter(lambda n: n != len(X)))
def test_wrong_number_of_targets_is_rejected(method, count):
    raises_clearly(
        lambda: TARGET_METHODS[method]([0] * count), "target", f"{count} targets", "2 images"
    )


# -- layers -----------------------------------------------------------------------------------
LAYER_METHODS = {
    "gradcam": lambda spec: vizkit.gradcam(MODEL, X, 0, layer=spec),
    "filters": lambda spec: vizkit.filters(MODEL, spec),
    "feature_maps": lambda spec: vizkit.feature_maps(MODEL, X, spec),
    "hypercolumns": lambda spec: vizkit.hypercolumns(MODEL, X, spec),
    "maximize": lambda spec: vizkit.maximize(MODEL, spec, 0, steps=1),
    "deepdream": lambda spec: vizkit.deepdream(MODEL, X[0], spec, octaves=1, steps=1),
    "top_activating": lambda spec: vizkit.top_activating(MODEL, spec, 0, X, k=1),
    "diagnose": lambda spec: vizkit.diagnose(MODEL, X, layers=spec),
    "export": lambda spec: vizkit.export(MODEL, X, OUT_DIR, layers=spec, progress=False),
}
unknown_name = st.text(max_size=12).filter(lambda s: s not in NAMES)
bad_index = st.one_of(st.integers(max_value=-len(NAMES) - 1), st.integers(min_value=len(NAMES)))


@pytest.mark.parametrize("method", list(LAYER_METHODS))
@SETTINGS
@given(spec=unknown_name)
def test_unknown_layer_name_is_rejected(method, spec):
    raises_clearly(lambda: LAYER_METHODS[method](spec), repr(spec), "available layers: 0: conv1")


@pytest.mark.parametrize("method", list(LAYER_METHODS))
@SETTINGS
@given(spec=bad_index)
def test_out_of_range_layer_index_is_rejected(method, spec):
    raises_clearly(
        lambda: LAYER_METHODS[method](spec), f"layer index {spec}", f"{len(NAMES)} layers"
    )


@pytest.mark.parametrize("method", list(LAYER_METHODS))
@SETTINGS
@given(spec=st.one_of(st.floats(), st.binary(max_size=3), st.dictionaries(st.text(), small)))
def test_layer_of_wrong_type_is_rejected(method, spec):
    message = raises_clearly(lambda: LAYER_METHODS[method](spec), "layer")
    assert type(spec).__name__ in message, message


@pytest.mark.parametrize(
    "call, layer, fragment",
    [
        (lambda s: vizkit.gradcam(MODEL, X, 0, layer=s), "flatten", "4-D (N, H, W, C)"),
        (lambda s: vizkit.gradcam(MODEL, X, 0, layer=s), "dense", "4-D (N, H, W, C)"),
        (lambda s: vizkit.filters(MODEL, s), "pool1", "layers with kernels: ['conv1'"),
        (lambda s: vizkit.filters(MODEL, s), "flatten", "layers with kernels: ['conv1'"),
    ],
    ids=["gradcam-flatten", "gradcam-dense", "filters-pool", "filters-flatten"],
)
def test_non_conv_layer_where_conv_needed(call, layer, fragment):
    raises_clearly(lambda: call(layer), repr(layer), fragment)


# -- units ------------------------------------------------------------------------------------
bad_unit = st.one_of(st.integers(max_value=-1), st.integers(min_value=CONV1_UNITS))


@SETTINGS
@given(unit=bad_unit)
def test_maximize_out_of_range_unit_is_rejected(unit):
    raises_clearly(
        lambda: vizkit.maximize(MODEL, "conv1", [0, unit], steps=1),
        "units",
        str(unit),
        f"0..{CONV1_UNITS - 1}",
    )


@SETTINGS
@given(unit=bad_unit)
def test_top_activating_out_of_range_unit_is_rejected(unit):
    raises_clearly(
        lambda: vizkit.top_activating(MODEL, "conv1", unit, X, k=1),
        f"unit {unit}",
        f"{CONV1_UNITS} channels",
    )


@pytest.mark.parametrize("unit", [1.5, True, "a", {0: 1}, [0, "a"]], ids=repr)
def test_unit_of_wrong_type_is_rejected(unit):
    # None is not here: it means "every unit" for top_activating and maximize.
    raises_clearly(lambda: vizkit.top_activating(MODEL, "conv1", unit, X, k=1), "unit")
    raises_clearly(lambda: vizkit.maximize(MODEL, "conv1", unit, steps=1), "units")


# -- occlusion window -------------------------------------------------------------------------
non_positive = st.integers(max_value=0)


@SETTINGS
@given(patch=st.one_of(non_positive, st.tuples(st.integers(1, 4), non_positive)))
def test_non_positive_patch_is_rejected(patch):
    raises_clearly(
        lambda: vizkit.occlusion(MODEL, X, 0, patch=patch), "patch", str(patch), "positive"
    )


@SETTINGS
@given(stride=st.one_of(non_positive, st.tuples(non_positive, st.integers(1, 4))))
def test_non_positive_stride_is_rejected(stride):
    raises_clearly(
        lambda: vizkit.occlusion(MODEL, X, 0, patch=4, stride=stride),
        "stride",
        str(stride),
        "positive",
    )


@SETTINGS
@given(patch=st.tuples(st.integers(1, 40), st.integers(1, 40)).filter(lambda p: max(p) > 12))
def test_patch_larger_than_image_is_rejected(patch):
    raises_clearly(
        lambda: vizkit.occlusion(MODEL, X, 0, patch=patch), "patch", str(patch), "(12, 12)"
    )


# -- step counts, sizes and other numbers ------------------------------------------------------
COUNT_ARGS = {
    "maximize steps": ("steps", lambda v: vizkit.maximize(MODEL, "conv1", 0, steps=v)),
    "deepdream steps": ("steps", lambda v: vizkit.deepdream(MODEL, X[0], "conv1", steps=v)),
    "deepdream octaves": (
        "octaves",
        lambda v: vizkit.deepdream(MODEL, X[0], "conv1", octaves=v, steps=1),
    ),
    "integrated steps": (
        "steps",
        lambda v: vizkit.saliency(MODEL, X, 0, method="integrated", steps=v),
    ),
    "smoothgrad samples": (
        "samples",
        lambda v: vizkit.saliency(MODEL, X, 0, method="smoothgrad", samples=v),
    ),
    "saliency batch_size": ("batch_size", lambda v: vizkit.saliency(MODEL, X, 0, batch_size=v)),
    "feature_maps batch_size": (
        "batch_size",
        lambda v: vizkit.feature_maps(MODEL, X, batch_size=v),
    ),
    "top_activating k": ("k", lambda v: vizkit.top_activating(MODEL, "conv1", 0, X, k=v)),
}
bad_count = st.one_of(
    st.integers(max_value=0), st.floats(allow_nan=True), st.text(max_size=3), st.booleans()
)


@pytest.mark.parametrize("arg", list(COUNT_ARGS))
@SETTINGS
@given(value=st.one_of(bad_count, st.none()))
def test_bad_counts_are_rejected(arg, value):
    name, call = COUNT_ARGS[arg]
    if value is None and name == "batch_size":
        return  # None means the default chunk size
    message = raises_clearly(lambda: call(value), name, repr(value))
    assert re.search(r"positive|>= ?1", message), message


FLOAT_ARGS = {
    "maximize learning_rate": (
        "learning_rate",
        lambda v: vizkit.maximize(MODEL, "conv1", 0, steps=1, learning_rate=v),
    ),
    "deepdream step_size": (
        "step_size",
        lambda v: vizkit.deepdream(MODEL, X[0], "conv1", octaves=1, steps=1, step_size=v),
    ),
    "occlusion fill": ("fill", lambda v: vizkit.occlusion(MODEL, X, 0, patch=4, fill=v)),
    "smoothgrad noise": (
        "noise",
        lambda v: vizkit.saliency(MODEL, X, 0, method="smoothgrad", samples=2, noise=v),
    ),
}


@pytest.mark.parametrize("arg", list(FLOAT_ARGS))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_are_rejected(arg, value):
    # Regression: NaN/inf learning_rate, step_size and fill used to run and return garbage.
    name, call = FLOAT_ARGS[arg]
    raises_clearly(lambda: call(value), name, repr(value))


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: vizkit.saliency(MODEL, X, 0, method="nope"), ["method", "'nope'", "vanilla"]),
        (lambda: vizkit.saliency(MODEL, X, 0, reduce="nope"), ["reduce", "'nope'", "maxabs"]),
        (lambda: vizkit.occlusion(MODEL, X, 0, fill="nope"), ["fill", "'nope'", "mean"]),
        (lambda: vizkit.occlusion(MODEL, X, 0, score="nope"), ["score", "'nope'", "logit"]),
        (lambda: vizkit.filters(MODEL, "conv1", mode="nope"), ["mode", "'nope'", "channels"]),
        (lambda: vizkit.top_activating(MODEL, 0, 0, X, reduce="x"), ["reduce", "'x'", "max"]),
        (lambda: vizkit.hypercolumns(MODEL, X, "conv1", size=(0, 3)), ["size", "(0, 3)"]),
        (lambda: vizkit.maximize(MODEL, 0, 0, steps=1, size=5), ["size", "5", "12"]),
        (
            lambda: vizkit.deepdream(MODEL, X[0], 0, steps=1, octaves=2, octave_scale=0.5),
            ["octave_scale", "0.5", ">= 1"],
        ),
        (lambda: vizkit.diagnose(MODEL, X, copy_threshold=2.0), ["copy_threshold", "2.0"]),
        (lambda: vizkit.diagnose(MODEL, X, dead_tol=-1.0), ["dead_tol", "-1.0", ">= 0"]),
        (lambda: vizkit.diagnose(MODEL, X, dead_tol="a"), ["dead_tol", "'a'", ">= 0"]),
        (lambda: vizkit.diagnose(MODEL, X, copy_threshold=None), ["copy_threshold", "None"]),
        (
            lambda: vizkit.filters(MODEL, "dense", image_shape="ab"),
            ["image_shape", "'ab'", "(H, W)"],
        ),
        (lambda: vizkit.saliency(MODEL, X, 0, samples=3), ["samples", "vanilla"]),
        (lambda: vizkit.gradcam(MODEL, X, 0, preprocess=3), ["preprocess", "callable"]),
        (
            lambda: vizkit.export(MODEL, X, OUT_DIR, methods=["nope"], progress=False),
            ["methods", "nope", "saliency"],
        ),
        (
            lambda: vizkit.export(MODEL, X, OUT_DIR, formats=["gif"], progress=False),
            ["formats", "gif", "png"],
        ),
    ],
    ids=lambda v: "" if callable(v) else str(v[0]),
)
def test_bad_options_are_rejected(call, fragments):
    raises_clearly(call, *fragments)


# -- not a model ------------------------------------------------------------------------------
NOT_MODELS = [None, "model.keras", 42, keras.layers.Dense(2)]
MODEL_METHODS = {
    "saliency": lambda m: vizkit.saliency(m, X, 0),
    "gradcam": lambda m: vizkit.gradcam(m, X, 0),
    "occlusion": lambda m: vizkit.occlusion(m, X, 0, patch=4),
    "feature_maps": lambda m: vizkit.feature_maps(m, X),
    "hypercolumns": lambda m: vizkit.hypercolumns(m, X, 0),
    "maximize": lambda m: vizkit.maximize(m, 0, 0, steps=1),
    "deepdream": lambda m: vizkit.deepdream(m, X[0], 0, steps=1),
    "top_activating": lambda m: vizkit.top_activating(m, 0, 0, X),
    "diagnose": lambda m: vizkit.diagnose(m, X),
}


@pytest.mark.parametrize("method", list(MODEL_METHODS))
@pytest.mark.parametrize("model", NOT_MODELS, ids=["None", "path", "int", "unbuilt-layer"])
def test_not_a_model_is_rejected(method, model):
    message = raises_clearly(lambda: MODEL_METHODS[method](model), "model")
    assert type(model).__name__ in message or "build it first" in message, message


@pytest.mark.parametrize("targets", [7, -1, [0, 9]], ids=repr)
def test_export_checks_targets_before_writing_anything(tmp_path, targets):
    # Regression: the filters figures were written before saliency found the bad target.
    bad = targets if isinstance(targets, int) else 9
    raises_clearly(
        lambda: vizkit.export(
            MODEL, X, tmp_path, methods=["filters", "saliency"], targets=targets, progress=False
        ),
        "target",
        str(bad),
        f"0..{N_CLASSES - 1}",
    )
    assert not list(tmp_path.rglob("*.png"))
