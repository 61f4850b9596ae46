"""Attention maps and attention rollout: known answers, and Keras' own attention scores."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf
from transformer_helpers import GRID, fixed_attention_vit, images, patch_box, tiny_vit

import vizkit
from vizkit.core.graph import Tap, attention_key, forward
from vizkit.plot import plot_attention


@pytest.fixture(scope="module")
def vit():
    return tiny_vit()


def _keras_weights(model, x) -> list[np.ndarray]:
    """Independent reference: every attention layer called by Keras itself with
    ``return_attention_scores=True`` on its input (a Keras sub-model gives the inputs)."""
    attn = [layer for layer in model.layers if isinstance(layer, keras.layers.MultiHeadAttention)]
    feeding = keras.Model(model.input, [layer.input[0] for layer in attn])(x)
    feeding = feeding if isinstance(feeding, list) else [feeding]
    return [
        layer(q, q, return_attention_scores=True)[1].numpy()
        for layer, q in zip(attn, feeding, strict=True)
    ]


def _numpy_rollout(weights, fusion="mean", discard=0.0, residual=True, query=0):
    rollout = None
    for w in weights:
        a = {"mean": np.mean, "max": np.max, "min": np.min}[fusion](w.astype(np.float64), axis=1)
        if discard:
            flat = a.reshape(len(a), -1)
            k = int(flat.shape[1] * discard)
            cut = np.sort(flat, axis=1)[:, k - 1 : k]
            a = np.where(flat > cut, flat, 0.0).reshape(a.shape)
        if residual:
            a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
        a = a / a.sum(axis=-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    return rollout[:, query, 1:].reshape(len(rollout), GRID, GRID)


def _upsample(grid):
    return tf.image.resize(grid[..., None].astype(np.float32), (12, 12), "bilinear").numpy()[..., 0]


def test_capturing_attention_leaves_the_outputs_unchanged(vit):
    x = tf.constant(images(3))
    plain = vit(x, training=False).numpy()
    tap = Tap(attention=("block1_attn", "block2_attn"))
    outputs, captured = forward(vit, x, tap)
    np.testing.assert_allclose(outputs[0].numpy(), plain, rtol=1e-5, atol=1e-6)
    assert captured[attention_key("block1_attn")].shape == (3, 2, 10, 10)
    # The patches are gone afterwards: a plain call takes Keras' fused path again.
    assert "_compute_attention" not in vars(vit.get_layer("block1_attn"))


def test_attention_maps_match_keras_scores(vit):
    x = images(3)
    ref = _keras_weights(vit, x)[1]  # (3, heads, 10, 10)
    maps = vizkit.attention_maps(vit, x)  # the last layer, class-token query
    assert maps.shape == (3, 2, GRID, GRID)
    np.testing.assert_allclose(maps, ref[:, :, 0, 1:].reshape(3, 2, GRID, GRID), atol=1e-6)
    patch = vizkit.attention_maps(vit, x, "block1_attn", query=(1, 2), heads=[1])
    first = _keras_weights(vit, x)[0]
    np.testing.assert_allclose(
        patch[:, 0], first[:, 1, 1 + 1 * GRID + 2, 1:].reshape(3, GRID, GRID), atol=1e-6
    )
    mean = vizkit.attention_maps(vit, x, query="mean", heads=0)
    np.testing.assert_allclose(
        mean[:, 0], ref[:, 0, 1:, 1:].mean(axis=1).reshape(3, GRID, GRID), atol=1e-6
    )
    assert vizkit.attention_maps(vit, x, upsample=True).shape == (3, 2, 12, 12)


@pytest.mark.parametrize("patch", [0, 4, 8])
def test_rollout_of_attention_fixed_on_one_patch_is_concentrated_there(patch):
    model = fixed_attention_vit(patch)
    x = images(2)
    raw = vizkit.attention_rollout(model, x, residual=False)
    top, left, bottom, right = patch_box(patch)
    for rollout in (raw, vizkit.attention_rollout(model, x)):
        for i in range(2):
            row, col = np.unravel_index(np.argmax(rollout[i]), rollout[i].shape)
            assert top <= row < bottom and left <= col < right
    # Without the residual, every layer sends everything to the patch: R = A A = A, whose class
    # row is one-hot; with it, (A + I)/2 twice gives 3/4 on the patch (1/4 stays on the class
    # token). Compare on the grid, before the bilinear upsampling.
    onehot = np.zeros((2, GRID, GRID))
    onehot[:, patch // GRID, patch % GRID] = 1.0
    np.testing.assert_allclose(raw, _upsample(onehot), atol=1e-4)
    residual = vizkit.attention_rollout(model, x)
    np.testing.assert_allclose(residual, _upsample(0.75 * onehot), atol=1e-4)


@pytest.mark.parametrize(
    ("fusion", "discard", "residual"),
    [("mean", 0.0, True), ("max", 0.0, True), ("min", 0.0, False), ("mean", 0.5, True)],
)
def test_rollout_matches_a_numpy_rollout_of_keras_scores(vit, fusion, discard, residual):
    x = images(2, seed=4)
    expected = _numpy_rollout(_keras_weights(vit, x), fusion, discard, residual)
    got = vizkit.attention_rollout(
        vit, x, head_fusion=fusion, discard_ratio=discard, residual=residual
    )
    np.testing.assert_allclose(got, _upsample(expected), rtol=1e-4, atol=1e-6)


def test_rollout_without_a_class_token_averages_the_patch_queries():
    model = tiny_vit(class_token=False, depth=1)
    x = images(2)
    (w,) = _keras_weights(model, x)
    fused = 0.5 * w.mean(axis=1) + 0.5 * np.eye(9)
    expected = fused.mean(axis=1).reshape(2, GRID, GRID)  # query='mean' by default
    np.testing.assert_allclose(vizkit.attention_rollout(model, x), _upsample(expected), atol=1e-6)
    with pytest.raises(ValueError, match="query='cls' needs a class token"):
        vizkit.attention_rollout(model, x, query="cls")


def test_bad_arguments_name_what_is_allowed(vit):
    x = images(1)
    with pytest.raises(ValueError, match="not a MultiHeadAttention layer; pass layer="):
        vizkit.attention_maps(vit, x, "block1_out")
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        vizkit.attention_rollout(vit, x, head_fusion="median")
    with pytest.raises(ValueError, match=r"discard_ratio must be a number in \[0, 1\)"):
        vizkit.attention_rollout(vit, x, discard_ratio=1.0)
    with pytest.raises(ValueError, match="outside the 3x3 patch grid"):
        vizkit.attention_maps(vit, x, query=(3, 0))
    with pytest.raises(ValueError, match=r"heads must be .* in 0\.\.1"):
        vizkit.attention_maps(vit, x, heads=[2])
    cnn = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(2, 3, name="c")])
    with pytest.raises(ValueError, match="has no MultiHeadAttention layer"):
        vizkit.attention_rollout(cnn, x)


def test_plot_attention_draws_one_panel_per_head_and_the_mean(vit):
    x = images(2)
    maps = vizkit.attention_maps(vit, x)
    fig = plot_attention(maps, x[1], image_index=1, title="block2_attn")
    assert len(fig.axes) == 3  # two heads and their mean
    assert [ax.get_title() for ax in fig.axes] == ["head 0", "head 1", "mean of heads"]
    assert all(len(ax.images) == 2 for ax in fig.axes)  # the image under each map
    with pytest.raises(ValueError, match="maps must have shape"):
        plot_attention(maps[0, 0])


@pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None, reason="keras-hub not installed")
def test_keras_hub_vit_backbone_with_random_weights():
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
    )
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    inp = keras.Input((32, 32, 3))
    features = backbone(inp)
    pooled = keras.layers.GlobalAveragePooling1D(name="avg")(features)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(pooled))
    maps = vizkit.attention_maps(model, x)
    assert maps.shape == (2, 2, 4, 4) and np.isfinite(maps).all()
    rollout = vizkit.attention_rollout(model, x)
    assert rollout.shape == (2, 32, 32) and np.isfinite(rollout).all()
    fm = vizkit.feature_maps(model, x, layers=[vizkit.layer_paths(model)[1]])
    assert next(iter(fm.values())).shape == (2, 4, 4, 16)
