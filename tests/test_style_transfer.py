"""Style transfer (Gatys et al., 2016) on the optimisation core: Gram matrices against NumPy,
the losses it minimises, seeding, and the command line."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest
from skimage import data as photos

import vizkit
from vizkit import optimize as opt
from vizkit.cli import main
from vizkit.methods.style_transfer import default_layers, gram_matrix, style_losses

SIDE = 32


@pytest.fixture(scope="module")
def model():
    """A small fully convolutional net (any image size), seeded random weights."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 3))
    x = inp
    for i, filters in enumerate((8, 16, 16), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.AveragePooling2D(2, name=f"pool{i}")(x)
    return keras.Model(inp, x, name="fcn")


@pytest.fixture(scope="module")
def pair():
    return photos.astronaut()[::16, ::16], photos.coffee()[::16, ::16]  # uint8 32x32, 25x38


def test_gram_matrix_matches_numpy():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    expected = np.einsum("nhwc,nhwd->ncd", features.astype(np.float64), features) / 30.0
    np.testing.assert_allclose(gram_matrix(features), expected, rtol=1e-5, atol=1e-6)
    tokens = features.reshape(2, 30, 4)  # positions may be tokens too
    np.testing.assert_allclose(gram_matrix(tokens), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="positions"):
        gram_matrix(features[:, 0, 0])


def test_losses_are_zero_at_their_targets_and_relative(model, pair):
    content, style = pair
    at_content = style_losses(model, content, content, style, size=SIDE)
    at_style = style_losses(model, style, content, style, size=SIDE)
    assert at_content["content"] == pytest.approx(0.0, abs=1e-6)
    assert at_style["style"] == pytest.approx(0.0, abs=1e-6)
    assert at_content["style"] > 0.01 and at_style["content"] > 0.01
    # Relative losses: scaling the network's activations leaves them unchanged.
    scaled = keras.Model(model.input, keras.layers.Rescaling(10.0)(model.output))
    again = style_losses(
        scaled, content, content, style, size=SIDE, content_layers="pool3", style_layers="pool3"
    )
    base = style_losses(
        model, content, content, style, size=SIDE, content_layers="pool3", style_layers="pool3"
    )
    assert again["style"] == pytest.approx(base["style"], rel=1e-4)


def test_style_loss_falls_tenfold_while_content_stays_bounded(model, pair):
    content, style = pair
    image, history = vizkit.style_transfer(
        model, content, style, size=SIDE, steps=40, learning_rate=0.1, return_history=True
    )
    assert image.shape == (SIDE, SIDE, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    before = style_losses(model, content, content, style, size=SIDE)
    after = style_losses(model, image, content, style, size=SIDE)
    assert after["style"] < before["style"] / 10
    # The result stays far closer to the content than the style image is.
    assert after["content"] < 0.5 * style_losses(model, style, content, style, size=SIDE)["content"]
    assert history.shape == (40,) and history[-1] > 5 * history[0]  # -(losses) rises


def test_same_seed_same_image(model, pair):
    content, style = pair
    run = dict(size=SIDE, steps=10, init="noise", param="fourier")
    first = vizkit.style_transfer(model, content, style, seed=3, **run)
    np.testing.assert_array_equal(
        first, vizkit.style_transfer(model, content, style, seed=3, **run)
    )
    other = vizkit.style_transfer(model, content, style, seed=4, **run)
    assert not np.allclose(first, other)


def test_default_layers_follow_the_resolution_stages(model):
    assert default_layers(model) == (["conv2"], ["conv1", "conv2", "conv3"])
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="a1")(inp)
    x = keras.layers.Conv2D(4, 3, name="a2")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, name="b1")(x)  # a strided conv starts a stage
    x = keras.layers.Conv2D(4, 3, name="b2")(x)
    assert default_layers(keras.Model(inp, x)) == (["a2"], ["a1", "b1"])


def test_bad_arguments(model, pair):
    content, style = pair
    with pytest.raises(ValueError, match="content must be one image"):
        vizkit.style_transfer(model, np.stack([content, content]), style, size=SIDE)
    with pytest.raises(ValueError, match="both 0"):
        vizkit.style_transfer(model, content, style, size=SIDE, style_weight=0, content_weight=0)
    with pytest.raises(ValueError, match="init must be one of"):
        vizkit.style_transfer(model, content, style, size=SIDE, init="photo")
    with pytest.raises(ValueError, match="target Gram matrix must have 2 dimensions"):
        opt.gram_loss("conv1", np.zeros((2, 3, 3)))


@pytest.mark.slow
def test_command_line_writes_the_stylised_image(model, pair, tmp_path):
    path = tmp_path / "fcn.keras"
    model.save(path)
    content, style = pair
    files = []
    for name, image in (("content.png", content), ("style.png", style)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        files.append(str(tmp_path / name))
    out = tmp_path / "out.png"
    argv = ["style-transfer", str(path), "--content", files[0], "--style", files[1]]
    argv += ["--steps", "5", "--size", "24", "--out", str(out)]
    assert main(argv) == 0
    written = cv2.imread(str(out))
    assert written.shape == (24, 24, 3)
    assert main(argv) == 1  # refuses to replace it without --overwrite
    assert main([*argv, "--overwrite", "--preprocess", "caffe"]) == 0
