"""Contract test over every registered architecture, plus published parameter counts.

Each model is built small (28x28x1, a narrow ``width``), runs a forward pass and one training
step, has unique readable layer names, and round-trips through ``.keras`` in safe mode. The
ImageNet-size parameter counts are compared with published figures and keras.applications.
"""

from __future__ import annotations

import inspect
import re

import keras
import numpy as np
import pytest

import models
from models.registry import get_builder

ALL_MODELS = models.list_models()
# Fewest channels that still leave every branch of the widest nets at least one channel.
TEST_WIDTH = 0.0625
# Keras' automatic names ("conv2d_3", "activation", "add_12") mean an unnamed layer. Lone
# "flatten"/"dropout" are allowed: one such layer per model is a deliberate, readable name.
_CLASSES = (
    "conv2d|dense|activation|batch_normalization|max_pooling2d|average_pooling2d|"
    "global_average_pooling2d|add|concatenate|input_layer|zero_padding2d|p_re_lu|re_lu|"
    "lambda|reshape|multiply|subtract|functional|sequential"
)
AUTO_NAME = re.compile(rf"^(({_CLASSES})(_\d+)?|(flatten|dropout)_\d+)$")
READABLE = re.compile(r"^[a-z][a-z0-9_]*$")


# The deepest nets keep one block per stage in tests: every block type is still exercised,
# and tracing 500+ layers would cost minutes on 2 cores.
SHALLOW = {"inception_v4", "inception_resnet_v1", "inception_resnet_v2"}


def _small_kwargs(name: str) -> dict:
    params = inspect.signature(get_builder(name)).parameters
    kwargs = {"width": TEST_WIDTH} if "width" in params else {}
    if name in SHALLOW:
        kwargs["blocks"] = (1, 1, 1)
    return kwargs


def _predict(model, x) -> np.ndarray:
    # Eager call: compiling a predict function per model would dominate the test's run time.
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(autouse=True)
def _fresh_session(request):
    # A fresh Keras state (name counters, graph) for each model. Python's garbage collection,
    # which clear_session also runs by default, takes a second or more per call in a process
    # that holds the other modules' models, so it runs only after the slow tests that build
    # ImageNet-size models (hundreds of MB each); the small ones are left to the collector.
    keras.backend.clear_session(free_memory=False)
    yield
    keras.backend.clear_session(free_memory=request.node.get_closest_marker("slow") is not None)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_contract(name, tmp_path):
    model = models.create_model(name, (28, 28, 1), num_classes=10, **_small_kwargs(name))
    rng = np.random.default_rng(0)
    x = rng.random((4, 28, 28, 1), dtype="float32")
    y = np.array([0, 3, 7, 9])

    probs = _predict(model, x)
    assert probs.shape == (4, 10)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)

    names = [layer.name for layer in model.layers]
    assert len(set(names)) == len(names), "duplicate layer names"
    unreadable = [n for n in names if not READABLE.match(n) or AUTO_NAME.match(n)]
    assert not unreadable, f"automatic or unreadable layer names: {unreadable[:5]}"
    assert model.layers[-1].name == "predictions"
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # one step: tracing the graph would cost more than it saves
    )
    before = [w.copy() for w in model.get_weights()]
    loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())

    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    # Exact: the weights are copies, and the same graph on the same batch runs the same kernels.
    np.testing.assert_array_equal(_predict(reloaded, x), _predict(model, x))
    assert [layer.name for layer in reloaded.layers] == names


@pytest.mark.parametrize("name", ALL_MODELS)
def test_feature_extractor_on_rgb(name):
    kwargs = _small_kwargs(name)
    if "include_top" not in inspect.signature(get_builder(name)).parameters:
        pytest.skip(f"{name} has no include_top option")
    model = models.create_model(name, (32, 32, 3), include_top=False, **kwargs)
    features = _predict(model, np.zeros((1, 32, 32, 3), dtype="float32"))
    # No pooling and no classifier: a spatial map that did not collapse.
    assert features.ndim == 4
    assert min(features.shape[1:3]) >= 1
    assert all(layer.name != "predictions" for layer in model.layers)


def test_width_scales_channels():
    narrow = models.create_model("resnet18", (32, 32, 3), width=0.25)
    full = models.create_model("resnet18", (32, 32, 3), width=0.5)
    assert narrow.get_layer("conv1").filters == 16
    assert full.get_layer("conv1").filters == 32
    with pytest.raises(ValueError, match="width"):
        models.create_model("resnet18", width=0)


def test_small_inputs_use_cifar_stems():
    # Seed 001's CIFAR adaptation: stride-1 stems, so 28x28 keeps a usable grid.
    resnet = models.create_model("resnet18", (28, 28, 1), width=0.125, include_top=False)
    assert resnet.output.shape[1:3] == (4, 4)
    v3 = models.create_model("inception_v3", (28, 28, 1), width=0.0625, include_top=False)
    assert v3.get_layer("mixed2").output.shape[1:3] == (18, 18)
    assert v3.output.shape[1:3] == (3, 3)


def test_preact_resnet_has_identity_paths():
    model = models.create_model("resnet34", (32, 32, 3), width=0.125, preact=True)
    assert model.get_layer("post_bn") is not None
    # A pre-activation block adds its input unchanged when shapes agree (no shortcut conv).
    add = model.get_layer("conv2_block2_out")
    assert add.input[0] is model.get_layer("conv2_block1_out").output


def test_two_tower_alexnet_groups_convolutions():
    model = models.create_model("alexnet", (32, 32, 3), width=0.25, two_tower=True)
    assert model.get_layer("conv2").groups == 2
    assert model.get_layer("conv3").groups == 1


# name -> (input side, published parameter count, where it comes from)
PUBLISHED = {
    "vgg16": (224, 138.4e6, "Simonyan & Zisserman / keras.applications"),
    "vgg19": (224, 143.7e6, "Simonyan & Zisserman / keras.applications"),
    "resnet18": (224, 11.7e6, "He et al. / torchvision"),
    "resnet34": (224, 21.8e6, "He et al. / torchvision"),
    # Caffe bvlc_googlenet without the auxiliary heads counts 7.0M (torchvision's BN
    # variant 6.6M; "6.8M" is also quoted).
    "inception_v1": (224, 7.0e6, "Szegedy et al. 2015, Caffe count without aux heads"),
    "inception_v3": (299, 23.9e6, "keras.applications InceptionV3"),
    "inception_v4": (299, 42.7e6, "Szegedy et al. 2017 / TF-slim"),
    "inception_resnet_v2": (299, 55.9e6, "keras.applications InceptionResNetV2"),
    "alexnet": (224, 62.4e6, "single-tower AlexNet (62,378,344)"),
}


# Exact counts of keras.applications' builders of the same architectures (weights=None,
# 1000 classes), an independent implementation; test_matches_live_keras_application re-derives
# one of them so the table cannot silently go stale.
KERAS_APPLICATIONS = {
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "inception_v3": 23_851_784,
    "inception_resnet_v2": 55_873_736,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_imagenet_parameter_counts(name):
    side, published, _source = PUBLISHED[name]
    count = models.create_model(name, (side, side, 3), num_classes=1000).count_params()
    assert abs(count - published) / published < 0.02, f"{name}: {count:,} vs {published:,.0f}"
    if name in KERAS_APPLICATIONS:
        assert count == KERAS_APPLICATIONS[name]


@pytest.mark.slow
def test_matches_live_keras_application():
    reference = keras.applications.InceptionV3(weights=None, input_shape=(299, 299, 3))
    assert reference.count_params() == KERAS_APPLICATIONS["inception_v3"]


@pytest.mark.slow
def test_two_tower_alexnet_count():
    model = models.create_model("alexnet", (224, 224, 3), num_classes=1000, two_tower=True)
    assert model.count_params() == 60_965_224


# Architectures without a single published count: they must still build with their ImageNet
# stems and reach the usual final grids.
IMAGENET_GRIDS = {
    "highway": (224, 7),
    "maxout": (224, 7),
    "nin": (224, 7),
    "msranet": (224, 5),
    "inception_v2": (224, 7),
    "inception_resnet_v1": (299, 8),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IMAGENET_GRIDS))
def test_imagenet_stems_build(name):
    side, grid = IMAGENET_GRIDS[name]
    model = models.create_model(name, (side, side, 3), num_classes=1000, include_top=False)
    assert model.output_shape[1:3] == (grid, grid)
    keras.backend.clear_session()
    model = models.create_model(name, (side, side, 3), num_classes=1000)
    assert model.output_shape == (None, 1000)


def test_too_small_input_names_the_argument():
    with pytest.raises(ValueError, match=r"input_shape=\(4, 4, 1\).*too small"):
        models.create_model("inception_v3", input_shape=(4, 4, 1))


@pytest.mark.slow
def test_vit_tiny_at_imagenet_size_is_vit_ti():
    # ViT-Ti / DeiT-Tiny (patch 16, width 192, 12 blocks of 3 heads, MLP 768, class token):
    # 5,717,416 parameters, the count of timm's vit_tiny_patch16_224 (5.7M in Touvron et al.).
    model = models.create_model(
        "vit_tiny",
        (224, 224, 3),
        num_classes=1000,
        patch_size=16,
        dim=192,
        depth=12,
        heads=3,
        mlp_ratio=4.0,
    )
    assert model.count_params() == 5_717_416
    assert model.get_layer("block12_attn").output.shape == (None, 197, 192)


def test_vit_tiny_refuses_a_patch_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match="not a multiple of patch_size=5"):
        models.create_model("vit_tiny", (28, 28, 1), patch_size=5)
    with pytest.raises(ValueError, match="divisible by heads"):
        models.create_model("vit_tiny", dim=30, heads=4)
