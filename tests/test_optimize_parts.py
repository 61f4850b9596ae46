"""Parts of the optimisation core: objectives, parametrisations, transforms, regularisers, cap."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import RANDOM_NET_SCALE, assert_close_f32, chain_terms

from vizkit import optimize as opt
from vizkit.optimize import core, transforms
from vizkit.optimize.params import Fourier, Pixel, freq_scale
from vizkit.optimize.transforms import apply_transforms, get_transforms

SEED = tf.constant([3, 4], tf.int32)


def tiny_model():
    inp = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    b = keras.layers.Conv2D(5, 3, padding="same", name="b")(a)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(b)
    out = keras.layers.Dense(3, activation="softmax", name="out")(g)
    return keras.Model(inp, out)


# --- objectives ----------------------------------------------------------------------------
def test_objectives_add_and_scale_like_their_values():
    model = tiny_model()
    x = tf.constant(np.random.default_rng(0).random((2, 12, 12, 3)), tf.float32)
    units = tf.constant([0, 1])
    parts = [opt.channel("a", 1), opt.neuron("b", 2), opt.class_logit(0), opt.layer_l2("a")]

    def value(objective):
        tap, specs = core.objective_tap(model, objective)
        return core.evaluate(model, objective, tap, specs, x, units).numpy()

    separate = [value(p) for p in parts]
    combined = parts[0] + 2 * parts[1] - parts[2] / 4 + parts[3] * 0.5
    expected = separate[0] + 2 * separate[1] - separate[2] / 4 + 0.5 * separate[3]
    # The model's sums (and a 12 x 12 average), then the four weighted terms.
    n_terms = chain_terms(model) + 12 * 12 + 4
    assert_close_f32(value(combined), expected, n_terms=n_terms, scale=RANDOM_NET_SCALE)
    np.testing.assert_array_equal(value(-parts[0]), -separate[0])  # exact: a sign flip
    # Equal objectives are equal cache keys.
    assert hash(opt.channel("a", 1) + opt.layer_mean("b")) == hash(
        opt.channel("a", 1) + opt.layer_mean("b")
    )


def test_terms_read_the_right_numbers():
    rng = np.random.default_rng(1)
    act = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    acts = {"l": tf.constant(act)}
    units = tf.constant([2, 0])

    def call(objective):
        return objective(acts, [], units).numpy()

    # Means of 5 x 7 (a channel) or 5 x 7 x 3 (the layer) terms of size at most max|act|.
    size = float(np.abs(act).max())
    assert_close_f32(
        call(opt.channel("l", 1)), act[..., 1].mean(axis=(1, 2)), n_terms=35, scale=size
    )
    per_image = [act[0, ..., 2].mean(), act[1, ..., 0].mean()]
    assert_close_f32(call(opt.channel("l")), per_image, n_terms=35, scale=size)
    # Exact: a neuron is one activation, picked.
    np.testing.assert_array_equal(call(opt.neuron("l", 1)), act[:, 2, 3, 1])
    np.testing.assert_array_equal(call(opt.neuron("l", 1, y=0, x=6)), act[:, 0, 6, 1])
    assert_close_f32(call(opt.layer_mean("l")), act.mean(axis=(1, 2, 3)), n_terms=105, scale=size)
    l2 = (act**2).mean(axis=(1, 2, 3))
    assert_close_f32(call(opt.layer_l2("l")), l2, n_terms=105 + 1, scale=size**2)
    # A one-hot direction is the channel objective (a 3-term dot product per pixel first).
    direction = call(opt.direction("l", [0, 3, 0]))
    assert_close_f32(direction, call(opt.channel("l", 1)), n_terms=3 + 35, scale=size)


def test_diversity_is_minus_mean_gram_similarity():
    act = np.random.default_rng(2).random((3, 4, 4, 2)).astype(np.float32)
    same = np.repeat(act[:1], 3, axis=0)
    div = opt.diversity("l")
    np.testing.assert_allclose(div({"l": tf.constant(same)}, [], None).numpy(), -1.0, rtol=1e-5)
    assert div({"l": tf.constant(act[:1])}, [], None).numpy()[0] == 0.0  # exact: no pairs
    flat = act.reshape(3, -1, 2)
    grams = np.stack([(f.T @ f).ravel() for f in flat])
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    sim = grams @ grams.T
    expected = -(sim.sum(1) - np.diag(sim)) / 2
    np.testing.assert_allclose(div({"l": tf.constant(act)}, [], None).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: opt.channel("a", -1), ValueError),
        (lambda: opt.direction("a", [0, 0]), ValueError),
        (lambda: opt.neuron("a", 0, y=1.5), TypeError),
        (lambda: opt.channel("a") * "2", TypeError),
    ],
)
def test_objective_errors(make, error):
    with pytest.raises(error):
        make()


# --- parametrisations ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 16, 3), (15, 9, 3), (10, 12, 1)])
def test_fourier_maps_to_images_in_range_and_inverts(shape):
    param = opt.fourier()
    params = param.init([0, 1], shape, seed=0)
    assert params.shape == (2, shape[2], shape[0], shape[1] // 2 + 1, 2)
    images = param.to_image(tf.constant(params * 300), shape).numpy()
    assert images.shape == (2, *shape)
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.1
    target = np.random.default_rng(0).uniform(0.1, 0.9, (2, *shape))
    back = param.to_image(tf.constant(param.inverse(target)), shape).numpy()
    np.testing.assert_allclose(back, target, atol=1e-4)


def test_fourier_inverse_of_a_constant_is_a_constant():
    shape = (8, 10, 3)
    param = opt.fourier()
    const = np.full((1, *shape), [0.2, 0.5, 0.7])
    spectrum = param.inverse(const)
    # All energy in the zero frequency ...
    assert np.abs(spectrum[:, :, 0, 0]).max() > 0.1
    rest = spectrum.copy()
    rest[:, :, 0, 0] = 0
    np.testing.assert_allclose(rest, 0, atol=1e-5)
    # ... and the zero frequency alone maps back to a constant image.
    image = param.to_image(tf.constant(spectrum), shape).numpy()
    np.testing.assert_allclose(image, const, atol=1e-5)


def test_fourier_scale_is_one_over_frequency():
    scale = freq_scale(8, 8, 1.0)
    # Frequency (0, 1/8) against (0, 2/8): twice the frequency, half the amplitude.
    assert scale[0, 1] == pytest.approx(2 * scale[0, 2])
    assert scale[0, 0] == pytest.approx(scale[0, 1])  # DC clamped to the lowest frequency


@pytest.mark.parametrize("squash", ["sigmoid", "clip"])
def test_pixel_param_round_trip_and_range(squash):
    param = opt.pixel(squash=squash)
    target = np.random.default_rng(3).uniform(0.05, 0.95, (2, 6, 5, 3))
    back = param.to_image(tf.constant(param.inverse(target)), (6, 5, 3)).numpy()
    np.testing.assert_allclose(back, target, atol=1e-5)
    wild = param.to_image(tf.constant(np.linspace(-50, 50, 90).reshape(1, 6, 5, 3)), None)
    assert 0.0 <= float(tf.reduce_min(wild)) and float(tf.reduce_max(wild)) <= 1.0


def test_param_init_depends_on_key_not_batch():
    param = Pixel()
    both = param.init([4, 7], (5, 5, 1), seed=2)
    np.testing.assert_array_equal(both[1], param.init([7], (5, 5, 1), seed=2)[0])
    assert not np.array_equal(both[0], both[1])
    with pytest.raises(ValueError, match="squash"):
        Fourier(squash="tanh")


# --- transforms ----------------------------------------------------------------------------
TRANSFORMS = [
    opt.jitter(3),
    opt.random_scale(np.linspace(0.8, 1.2, 9)),
    opt.random_rotate(range(-20, 21)),
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
def test_transforms_keep_shape_and_dtype_and_are_seeded(transform):
    x = tf.constant(np.random.default_rng(4).random((3, 17, 13, 3)), tf.float32)
    y = transform(x, SEED)
    assert y.shape == x.shape and y.dtype == x.dtype
    # Exact: the same op on the same image with the same per-image seed.
    np.testing.assert_array_equal(y.numpy(), transform(x, SEED).numpy())
    assert not np.allclose(y.numpy(), transform(x, SEED + 1).numpy())
    # Per-image seeds: an image's transform depends on its own seed only.
    seeds = tf.constant([[9, 0], [9, 1], [9, 2]], tf.int32)
    alone = transform(x[1:2], seeds[1:2]).numpy()
    np.testing.assert_array_equal(transform(x, seeds).numpy()[1:2], alone)
    np.testing.assert_array_equal(transform(x[::-1], seeds[::-1]).numpy()[1:2], alone)


def test_counter_based_draws_are_uniform_and_independent():
    n = 200_000
    seeds = tf.stack([tf.fill([n], 7), tf.range(n)], axis=1)
    u = transforms.uniform(seeds, 2).numpy()
    assert u.shape == (n, 2) and u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u[:, 0], bins=20, range=(0, 1))[0]
    # Chi-square with 19 degrees of freedom: 43.8 is the 0.999 quantile.
    assert ((counts - n / 20) ** 2 / (n / 20)).sum() < 43.8
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.01  # draws of one key
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.01  # neighbouring keys
    folded = transforms.uniform(transforms.fold_in(seeds, 1), 1).numpy()[:, 0]
    assert abs(np.corrcoef(folded, u[:, 0])[0, 1]) < 0.01
    # Exact: counter-based draws are integer hashes of (key, counter), whatever the batch.
    np.testing.assert_array_equal(transforms.uniform(seeds[5:9], 2).numpy(), u[5:9])


@pytest.mark.parametrize(
    "identity", [opt.jitter(0), opt.random_scale([1.0]), opt.random_rotate([0])]
)
def test_neutral_transforms_are_the_identity(identity):
    x = tf.constant(np.random.default_rng(5).random((2, 9, 11, 1)), tf.float32)
    np.testing.assert_allclose(identity(x, SEED).numpy(), x.numpy(), atol=1e-5)


def test_pad_jitter_pipeline_and_crop_back():
    x = tf.constant(np.random.default_rng(6).random((2, 10, 10, 3)), tf.float32)
    padded = opt.pad(2)(x, SEED)
    assert padded.shape == (2, 14, 14, 3)
    # Exact: padding writes a constant, cropping back copies.
    assert np.all(padded.numpy()[:, 0] == 0.5)
    np.testing.assert_array_equal(core._fit(padded, (10, 10)).numpy(), x.numpy())
    pipeline = get_transforms("standard", (28, 28))
    out = apply_transforms(pipeline, x, SEED)
    assert core._fit(out, (10, 10)).shape == x.shape
    rotated = opt.random_rotate([90])(x[:, :, :, :1], SEED).numpy()[..., 0]
    np.testing.assert_allclose(rotated, np.rot90(x.numpy()[..., 0], k=1, axes=(1, 2)), atol=1e-5)


# --- regularisers --------------------------------------------------------------------------
def test_total_variation_and_l2_match_numpy():
    x = np.random.default_rng(7).random((2, 6, 8, 3)).astype(np.float32)
    tv = np.abs(np.diff(x, axis=1)).sum(axis=(1, 2, 3)) + np.abs(np.diff(x, axis=2)).sum(
        axis=(1, 2, 3)
    )
    np.testing.assert_allclose(
        opt.total_variation(2.0)(tf.constant(x)).numpy(), 2.0 * tv / (6 * 8 * 3), rtol=1e-5
    )
    np.testing.assert_allclose(
        opt.l2(0.5)(tf.constant(x)).numpy(), 0.5 * ((x - 0.5) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5
    )


def test_blur_penalty_pulls_towards_the_local_mean():
    x = tf.constant(np.random.default_rng(8).random((1, 7, 7, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        penalty = opt.blur(1.0)(x)
    grad = tape.gradient(penalty, x).numpy()
    local_mean = tf.nn.avg_pool2d(x, 3, 1, "SAME").numpy()
    np.testing.assert_allclose(grad, (x.numpy() - local_mean) / 49, rtol=1e-4, atol=1e-7)
    assert opt.blur(1.0)(tf.fill((1, 5, 5, 1), 0.3)).numpy()[0] == pytest.approx(0.0, abs=1e-10)


# --- step cap and validation ---------------------------------------------------------------
def test_step_cap_from_environment(monkeypatch):
    monkeypatch.setenv(opt.MAX_STEPS_ENV, "7")
    assert opt.capped_steps(256) == 7
    assert opt.capped_steps(3) == 3
    monkeypatch.delenv(opt.MAX_STEPS_ENV)
    assert opt.capped_steps(256) == 256
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps must be a positive int"):
            opt.capped_steps(bad)


def test_optimize_history_has_one_row_per_step(monkeypatch):
    monkeypatch.setenv(opt.MAX_STEPS_ENV, "5")
    model = tiny_model()
    result = opt.optimize(model, opt.channel("a", 0), n=2, steps=100, param="pixel")
    assert result.images.shape == (2, 12, 12, 3) and result.images.dtype == np.float32
    assert result.history.shape == (5, 2)
    with pytest.raises(ValueError, match="optimizer"):
        opt.optimize(model, opt.channel("a", 0), optimizer="sgd")
    with pytest.raises(TypeError, match="Objective"):
        opt.optimize(model, "a")
