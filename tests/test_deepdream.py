"""DeepDream: raises the chosen layers' activation, keeps size and dtype, tiles, is seeded."""

import keras
import numpy as np
import pytest

import vizkit


def conv_model() -> keras.Model:
    """Fully-convolutional: takes any image size."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    return keras.Model(inp, x)


def fixed_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(x))


def layer_mean(model, image, name):
    sub = keras.Model(model.input, model.get_layer(name).output)
    x = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    return float(sub(x[None]).numpy().mean())


def photo(h=40, w=56, dtype=np.uint8):
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.standard_normal((h, w, 3)), 0), 1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    return (smooth * 255).astype(np.uint8) if dtype == np.uint8 else smooth.astype(dtype)


def test_dream_on_a_non_square_image_larger_than_the_tile():
    model = conv_model()
    image = photo()
    out = vizkit.deepdream(model, image, ["conv2"], steps=10, tile_size=24)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert layer_mean(model, out, "conv2") > 1.2 * layer_mean(model, image, "conv2")
    # Tiling does not change what is optimised: one big tile gives a similar gain.
    whole = vizkit.deepdream(model, image, ["conv2"], steps=10, tile_size=512)
    assert layer_mean(model, whole, "conv2") > 1.2 * layer_mean(model, image, "conv2")


def test_same_seed_same_dream_and_float_stays_float():
    model = conv_model()
    image = photo(dtype=np.float32)
    kwargs = {"steps": 5, "tile_size": 32, "octaves": 2}
    a = vizkit.deepdream(model, image, "conv1", seed=1, **kwargs)
    b = vizkit.deepdream(model, image, "conv1", seed=1, **kwargs)
    c = vizkit.deepdream(model, image, "conv1", seed=2, **kwargs)
    np.testing.assert_array_equal(a, b)  # exact: the same compiled runs with the same seed
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == image.shape
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert layer_mean(model, a, "conv1") > layer_mean(model, image, "conv1")


def test_weighted_layers_and_wider_float_range():
    model = conv_model()
    image = photo(dtype=np.float32) * 4.0 - 2.0  # a float image in [-2, 2]
    out = vizkit.deepdream(model, image, ["conv1", "conv2"], weights=[0.5, 1.0], steps=5)
    assert out.shape == image.shape
    assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6
    assert np.abs(out - image).max() > 0.05


def test_fixed_size_model_uses_its_input_size_as_tile():
    model = fixed_model()
    image = photo(20, 30)[..., 0]  # grayscale, larger than the 16x16 input
    out = vizkit.deepdream(model, image, "conv", steps=8, octaves=2)
    assert out.shape == (20, 30, 1) and out.dtype == np.uint8
    assert layer_mean(model, out[:16, :16], "conv") > layer_mean(
        model, image[:16, :16, None], "conv"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"layers": None}, ValueError, "layers"),
        ({"layers": "nope"}, ValueError, "unknown layer"),
        ({"layers": "conv1", "weights": [1, 2]}, ValueError, "weights"),
        ({"layers": "conv1", "octaves": 0}, ValueError, "octaves"),
        ({"layers": "conv1", "octave_scale": 0.5}, ValueError, "octave_scale"),
        ({"layers": "conv1", "steps": 0}, ValueError, "steps"),
        ({"layers": "conv1", "step_size": -1}, ValueError, "step_size"),
        ({"layers": "conv1", "tile_size": 0}, ValueError, "tile_size"),
        ({"layers": "conv1", "image": np.zeros((2, 8, 8, 3))}, ValueError, "one image"),
        ({"layers": "conv1", "image": np.full((8, 8, 3), np.nan)}, ValueError, "NaN"),
    ],
)
def test_invalid_arguments_are_named(kwargs, error, fragment):
    kwargs = {"image": photo(16, 16), **kwargs}
    with pytest.raises(error, match=fragment):
        vizkit.deepdream(conv_model(), kwargs.pop("image"), kwargs.pop("layers"), **kwargs)
