"""Transformer token layers read as patch grids by every spatial method (vizkit.core.tokens)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from transformer_helpers import (
    GRID,
    N_PATCHES,
    images,
    one_patch_reader,
    patch_box,
    position_tokens,
    tiny_vit,
)

import vizkit
from models.custom_layers import ClassToken, PositionEmbedding
from vizkit import optimize as opt
from vizkit import registry
from vizkit.core.tokens import TokenGrid, default_map_layer, infer_grid
from vizkit.optimize.core import gradient_of
from vizkit.report.compute import Context, call, default_layers, suits

F32 = 1e-5  # float32 round-off of a few dozen products and sums of values of order 1


@pytest.fixture(scope="module")
def vit():
    return tiny_vit()


def _raw(model, layer, x):
    """Independent reference: Keras' own sub-model output (vizkit never builds one)."""
    return keras.Model(model.input, model.get_layer(layer).output)(x).numpy()


@pytest.mark.parametrize(
    ("tokens", "kwargs", "expected"),
    [
        (49, {}, (7, 7, 0)),
        (50, {}, (7, 7, 1)),
        (197, {}, (14, 14, 1)),
        (66, {"prefix_tokens": 2}, (8, 8, 2)),
        (34, {"token_grid": (4, 8)}, (4, 8, 2)),
        (36, {"token_grid": (4, 8), "prefix_tokens": 4}, (4, 8, 4)),
        (1, {"token_grid": (1, 1)}, (1, 1, 0)),
    ],
)
def test_grid_is_inferred_or_taken_as_given(tokens, kwargs, expected):
    grid = infer_grid(tokens, **kwargs)
    assert (grid.height, grid.width, grid.prefix) == expected
    assert grid.tokens == tokens


@pytest.mark.parametrize(
    ("tokens", "kwargs"),
    [(66, {}), (1, {}), (2, {}), (50, {"token_grid": (8, 8)}), (50, {"prefix_tokens": 2})],
)
def test_ambiguous_grids_name_both_arguments(tokens, kwargs):
    with pytest.raises(ValueError, match=r"token_grid=\(h, w\)") as info:
        infer_grid(tokens, **kwargs)
    assert str(tokens) in str(info.value)
    if not kwargs:
        assert "prefix_tokens" in str(info.value)


def test_bad_grid_arguments_are_refused():
    with pytest.raises(ValueError, match="token_grid must be"):
        infer_grid(49, token_grid=7)
    with pytest.raises(ValueError, match="prefix_tokens must be"):
        infer_grid(49, prefix_tokens=-1)


def test_grid_round_trip_numpy_and_tensorflow():
    rng = np.random.default_rng(0)
    grid = TokenGrid(3, 4, 2)
    tokens = rng.normal(size=(2, 14, 5)).astype(np.float32)
    as_np = grid.to_grid(tokens)
    # Patch token p is at (p // w, p % w) after the prefix: row-major, like ViT's flatten.
    np.testing.assert_array_equal(as_np[1, 2, 1], tokens[1, 2 + 2 * 4 + 1])
    np.testing.assert_array_equal(grid.to_grid(tf.constant(tokens)).numpy(), as_np)
    back = grid.to_tokens(as_np, prefix=tokens[:, :2])
    np.testing.assert_array_equal(back, tokens)
    np.testing.assert_array_equal(grid.to_tokens(tf.constant(as_np)).numpy()[:, 2:], tokens[:, 2:])


def test_feature_maps_of_token_layers_are_the_reshaped_patch_tokens(vit):
    x = images(3)
    maps = vizkit.feature_maps(vit, x, layers=["block1_out", "block2_mlp1", "patch_embed"])
    for layer in ("block1_out", "block2_mlp1"):
        raw = _raw(vit, layer, x)  # (3, 1 + 9, D): class token first
        assert maps[layer].shape == (3, GRID, GRID, raw.shape[-1])
        np.testing.assert_allclose(
            maps[layer], raw[:, 1:].reshape(3, GRID, GRID, -1), rtol=F32, atol=F32
        )
    defaults = vizkit.feature_maps(vit, x)
    assert "block2_attn" in defaults and "class_token_out" not in defaults  # a lone token


def test_hypercolumns_upsample_token_grids(vit):
    x = images(2)
    cols = vizkit.hypercolumns(vit, x, ["block2_out"])
    grid = _raw(vit, "block2_out", x)[:, 1:].reshape(2, GRID, GRID, -1)
    expected = tf.image.resize(grid, (12, 12), method="bilinear").numpy()
    np.testing.assert_allclose(cols, expected, rtol=1e-4, atol=1e-4)


def test_gradcam_on_a_token_layer_peaks_at_the_patch_the_model_reads():
    x = images(2, seed=3)
    for patch in (0, 5, 7):
        model = one_patch_reader(patch)
        cam = vizkit.gradcam(model, x, target=0, layer="tokens")
        top, left, bottom, right = patch_box(patch)
        for i in range(len(x)):
            row, col = np.unravel_index(np.argmax(cam[i]), cam[i].shape)
            assert top <= row < bottom and left <= col < right, (patch, row, col)
        # The exact map: (2 [i == patch] + brightness_i) / 9 on the grid, then upsampled/scaled.
        bright = x.reshape(2, GRID, 4, GRID, 4).mean(axis=(2, 4))
        onehot = np.zeros((GRID, GRID), np.float32)
        onehot[divmod(patch, GRID)] = 2.0
        grid = (onehot + bright) / N_PATCHES
        up = tf.image.resize(grid[..., None], (12, 12), method="bilinear").numpy()[..., 0]
        expected = up / up.reshape(2, -1).max(axis=1)[:, None, None]
        np.testing.assert_allclose(cam, expected, atol=1e-5)


def test_gradcam_default_layer_of_a_transformer_is_the_input_of_the_last_attention(vit):
    assert default_map_layer(vit) == "block2_norm1"
    cam = vizkit.gradcam(vit, images(2))
    assert cam.shape == (2, 12, 12) and np.isfinite(cam).all()


def test_channel_objective_is_the_mean_over_patch_tokens(vit):
    x = images(2, seed=5)
    raw = _raw(vit, "block1_mlp1", x)
    objective = opt.channel("block1_mlp1", 3, prefix_tokens=1)
    scores = gradient_of(vit, objective, x.shape)(tf.constant(x))[0].numpy()
    np.testing.assert_allclose(scores, raw[:, 1:, 3].mean(axis=1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(scores, raw[:, :, 3].mean(axis=1), atol=1e-6)  # class token left out


def test_maximize_a_token_channel_raises_its_mean_patch_activation(vit):
    unit = 2
    grey = np.full((1, 12, 12, 1), 0.5, np.float32)
    found, history = vizkit.maximize(
        vit, "block1_mlp1", unit, steps=30, param="pixel", transforms=None, return_history=True
    )
    assert found.shape == (1, 12, 12, 1)
    before = vizkit.feature_maps(vit, grey, layers="block1_mlp1")["block1_mlp1"][0, ..., unit]
    after = vizkit.feature_maps(vit, found, layers="block1_mlp1")["block1_mlp1"][0, ..., unit]
    assert after.mean() > before.mean() + 0.1
    assert history[-1, 0] > history[0, 0]


def test_top_activating_token_patches_and_their_boxes():
    inp, tokens = position_tokens(prefix=1)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D(name="avg")(tokens))
    x = np.zeros((4, 12, 12, 1), np.float32)
    bright = {0: (4, 0.3), 1: (8, 0.9), 2: (0, 0.6), 3: (2, 0.1)}  # image: (patch, value)
    for i, (patch, value) in bright.items():
        top, left, bottom, right = patch_box(patch)
        x[i, top:bottom, left:right] = value
    indices, scores, crops = vizkit.top_activating(model, "tokens", 9, x, k=3, crops=True)
    assert indices.tolist() == [1, 2, 0]  # channel 9 is a patch's brightness
    np.testing.assert_allclose(scores, [0.9, 0.6, 0.3], rtol=1e-6)
    for i, box, loc in zip(indices, crops.boxes, crops.locations, strict=True):
        assert tuple(box) == patch_box(bright[int(i)][0])
        assert tuple(loc) == divmod(bright[int(i)][0], GRID)
    assert crops.images.shape == (3, 4, 4, 1)
    np.testing.assert_allclose(crops.images[0], 0.9)
    # Position channel 4 fires on patch 4 of every image: the max is 1 everywhere.
    _, scores = vizkit.top_activating(model, "tokens", 4, x, k=2)
    np.testing.assert_allclose(scores, 1.0)


def test_diagnose_reads_token_layers_as_grids():
    inp, tokens = position_tokens(prefix=1)
    dense = keras.layers.Dense(4, activation="relu", name="mlp")
    y = dense(tokens)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D(name="avg")(y))
    kernel = np.zeros((10, 4), np.float32)
    kernel[9, 0] = 1.0  # channel 0: brightness; 1: dead; 2: constant 0.5; 3: position 4 only
    kernel[4, 3] = 1.0
    dense.set_weights([kernel, np.array([0.0, -1.0, 0.5, 0.0], np.float32)])
    report = vizkit.diagnose(model, images(4, seed=1), layers=["mlp"])["mlp"]
    assert report.shape == (GRID, GRID, 4)
    assert report.dead == (1,) and report.constant == (2,)
    # Sparsity counts patch tokens only: channel 3 is zero on 8 of 9 patches, channel 1 on all.
    np.testing.assert_allclose(report.sparsity, (0 + 9 + 0 + 8) / 36, atol=1e-9)


def _deit_like() -> keras.Model:
    """Two prefix tokens (class + distillation) on a 3x3 grid: 11 tokens, an ambiguous count."""
    inp = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(6, 4, strides=4, name="patch_embed")(inp)
    x = keras.layers.Reshape((9, 6), name="patch_tokens")(x)
    x = ClassToken(2, name="class_tokens")(x)
    x = PositionEmbedding(name="pos_embed")(x)
    y = keras.layers.MultiHeadAttention(2, 3, name="attn")(x, x)
    x = keras.layers.Add(name="block_out")([x, y])
    x = keras.layers.GlobalAveragePooling1D(name="avg")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="deit_like")


@pytest.mark.parametrize(
    "run",
    [
        lambda m, x, **kw: vizkit.feature_maps(m, x, layers="block_out", **kw)["block_out"],
        lambda m, x, **kw: vizkit.gradcam(m, x, layer="block_out", **kw),
        lambda m, x, **kw: vizkit.maximize(
            m, "block_out", 0, steps=1, param="pixel", transforms=None, **kw
        ),
        lambda m, x, **kw: vizkit.top_activating(m, "block_out", 0, x, k=1, crops=True, **kw)[2],
        lambda m, x, **kw: vizkit.diagnose(m, x, layers="block_out", **kw),
        lambda m, x, **kw: vizkit.hypercolumns(m, x, "block_out", **kw),
        lambda m, x, **kw: vizkit.attention_maps(m, x, "attn", **kw),
        lambda m, x, **kw: vizkit.attention_rollout(m, x, **kw),
    ],
    ids=[
        "feature_maps",
        "gradcam",
        "maximize",
        "top_activating",
        "diagnose",
        "hypercolumns",
        "attention_maps",
        "attention_rollout",
    ],
)
def test_ambiguous_token_layers_refuse_then_work_with_the_named_argument(run):
    model, x = _deit_like(), images(2)
    with pytest.raises(ValueError, match=r"token_grid=\(h, w\) and/or prefix_tokens=p"):
        run(model, x)
    assert run(model, x, prefix_tokens=2) is not None


def test_a_given_grid_implies_the_prefix():
    model, x = _deit_like(), images(2)
    by_grid = vizkit.feature_maps(model, x, layers="block_out", token_grid=(3, 3))["block_out"]
    by_prefix = vizkit.feature_maps(model, x, layers="block_out", prefix_tokens=2)["block_out"]
    np.testing.assert_array_equal(by_grid, by_prefix)  # the same compiled call and input
    np.testing.assert_allclose(
        by_grid, _raw(model, "block_out", x)[:, 2:].reshape(2, 3, 3, 6), rtol=F32, atol=F32
    )


LAYER_FOR_KIND = {"spatial": "block1_out", "gradcam": "block1_out", "units": "block1_mlp1"}
FAST = {
    "maximize": {"steps": 2, "first": 2},
    "deepdream": {"steps": 1, "octaves": 1},
    "top_activating": {"first": 2, "k": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize("spec", list(registry.METHODS.values()), ids=lambda s: s.name)
def test_every_method_works_on_a_vision_transformer(spec, vit):
    """Through the same adapters as the export: every method runs on a token layer (or the
    attention layer, or the patch embedding for filters) of a tiny ViT."""
    x = images(2)
    layer = {"conv2d": "patch_embed", "attention": "block2_attn"}.get(
        spec.layers, LAYER_FOR_KIND.get(spec.layers)
    )
    if layer is not None:
        assert suits(spec, vit.get_layer(layer))
    ctx = Context(model=vit, images=x, targets=None, layers=["block1_out", "block2_out"])
    result = call(spec, ctx, layer, FAST.get(spec.name, {}))
    if spec.per_image:
        assert len(result) == 2 and np.isfinite(np.asarray(result, np.float32)).all()
    if spec.layers is not None:
        assert default_layers(spec, vit), spec.name
