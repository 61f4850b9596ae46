"""vizkit.metrics sanity checks and robustness: the randomisation test (Adebayo et al., 2018),
the random-logit test and max-sensitivity, on models whose answers are known."""

import keras
import numpy as np
import pytest
from helpers import (
    counted_cnn,
    linear_model,
    nested_cnn,
    random_images,
    sequential_cnn,
    small_cnn,
)

import vizkit
from vizkit.metrics import random_logit_test, randomization_test, randomization_tests, sensitivity


def blob_data(n=300, seed=0):
    """12x12 images whose class is where a bright 4x4 blob sits (three places)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 12, 12, 1)) * 0.3).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, (r, c) in enumerate([(1, 1), (1, 7), (7, 4)][k] for k in y):
        x[i, r : r + 4, c : c + 4, 0] += 0.7
    return x, y


@pytest.fixture(scope="module")
def trained():
    """small_cnn trained to 100 % on the blob task (a couple of seconds)."""
    keras.utils.set_random_seed(0)
    x, y = blob_data()
    model = small_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return model, x[:16]


def test_randomising_every_layer_decorrelates_vanilla_gradients(trained):
    model, x = trained
    results = randomization_tests(model, x, ["vanilla", "gradxinput"], similarity="all")
    vanilla = results["vanilla"]
    assert vanilla.layers == ("dense", "conv2", "conv1")  # from the output down
    assert vanilla.cascade and set(vanilla.similarity) == {"spearman", "ssim", "hog"}
    assert vanilla.similarity["spearman"].shape == (3, 16)
    assert vanilla.final("spearman").mean() < 0.4
    assert vanilla.final("ssim").mean() < 0.4
    # Gradient x input keeps the image in the map, so it stays more similar (Adebayo et al.).
    assert results["gradxinput"].final().mean() > vanilla.final().mean() + 0.1
    # The strip: the original map then one map per step, for image 0.
    assert vanilla.maps.shape == (4, 1, 12, 12) and vanilla.kept == (0,)
    np.testing.assert_allclose(
        vanilla.maps[0, 0], vizkit.explain(model, x[:1], "vanilla")[0], atol=1e-6
    )


def test_the_model_passed_in_is_never_modified(trained):
    model, x = trained
    before = [w.copy() for w in model.get_weights()]
    maps = vizkit.explain(model, x, "guided")
    randomization_test(model, x, "guided", cascade=False, similarity="ssim")
    randomization_test(model, x, "guided")
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(vizkit.explain(model, x, "guided"), maps, atol=1e-7)


def test_layers_get_their_own_initialisers():
    # A linear model: the vanilla map is |w| of the target class. Hand-set weights near 1, an
    # initialiser that draws in [-0.01, 0.01]: after randomisation the map must be that small.
    rng = np.random.default_rng(0)
    inp = keras.Input((5, 5, 1))
    dense = keras.layers.Dense(
        2, use_bias=False, kernel_initializer=keras.initializers.RandomUniform(-0.01, 0.01)
    )
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    dense.set_weights([(1 + rng.random((25, 2))).astype(np.float32)])
    x = rng.random((3, 5, 5, 1), dtype=np.float32)
    result = randomization_test(model, x, "vanilla", 0, keep=[0, 2])
    original, randomised = result.maps
    assert original.shape == (2, 5, 5) and result.kept == (0, 2)
    assert np.all(original >= 1) and np.all(randomised <= 0.01) and np.any(randomised > 0)
    # Seeded: the same draws again, other draws with another seed.
    again = randomization_test(model, x, "vanilla", 0, keep=[0, 2])
    np.testing.assert_array_equal(again.maps, result.maps)
    other = randomization_test(model, x, "vanilla", 0, keep=[0, 2], seed=1)
    assert not np.allclose(other.maps[1], result.maps[1])


def test_independent_and_cascading_share_each_layers_draws():
    model = sequential_cnn()
    x = random_images(4, (12, 12, 1), seed=1)
    cascade = randomization_test(model, x, "vanilla", similarity=["spearman", "ssim"])
    single = randomization_test(model, x, "vanilla", cascade=False, similarity=["spearman", "ssim"])
    assert cascade.layers == single.layers == ("dense", "conv2", "conv1")
    # Step 0 randomises the top layer alone in both modes.
    for s in ("spearman", "ssim"):
        np.testing.assert_allclose(single.similarity[s][0], cascade.similarity[s][0], atol=1e-6)
    # One at a time: each step starts from the trained weights again, so the last step differs.
    assert not np.allclose(single.maps[-1], cascade.maps[-1])


def test_nested_models_and_chosen_layers():
    model = nested_cnn()
    x = random_images(3, (12, 12, 1), seed=2)
    result = randomization_test(model, x, "vanilla", layers=["backbone/conv", "out"], keep=None)
    assert result.layers == ("out", "backbone/conv") and result.maps is None
    full = randomization_test(model, x, "vanilla")
    assert full.layers == ("out", "head_conv", "backbone/conv_b", "backbone/conv")
    assert result.to_dict()["similarity"]["spearman"]["mean"].__len__() == 2


def test_random_logit_test():
    # Class k of a linear model reads its own weights: vanilla maps of two classes are |w_k|.
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 6, 1, 4)).astype(np.float32)
    model = linear_model(w)
    x = rng.random((8, 6, 6, 1), dtype=np.float32)
    values = random_logit_test(model, x, "vanilla", 0, similarity="all", seed=5)
    others = (np.random.default_rng(5).integers(0, 3, 8) + 1).astype(int)  # classes other than 0
    expected = [
        vizkit.metrics.spearman(np.abs(w[None, ..., 0, 0]), np.abs(w[None, ..., 0, k]))[0]
        for k in others
    ]
    np.testing.assert_allclose(values["spearman"], expected, atol=1e-6)
    # The same weights for two classes: the test must see identical maps.
    same = linear_model(np.concatenate([w[..., :1], w[..., :1]], axis=-1))
    np.testing.assert_allclose(random_logit_test(same, x, "vanilla", 1), 1.0, atol=1e-6)


def test_sensitivity_of_an_input_independent_map_is_zero():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 6, 1, 3)).astype(np.float32)
    model = linear_model(w)
    x = (0.2 + rng.random((5, 6, 6, 1))).astype(np.float32)
    # The gradient of a linear model does not depend on the input.
    np.testing.assert_allclose(sensitivity(model, x, "vanilla", samples=6), 0.0, atol=1e-6)
    # A map function that ignores its input, too.
    fixed = sensitivity(model, x, lambda m, images, t: np.ones(images.shape[:3]), samples=3)
    np.testing.assert_array_equal(fixed, 0.0)
    # Gradient x input moves with the input, by at most radius * ||w|| / ||w x||.
    radius = 0.05
    values = sensitivity(model, x, "gradxinput", 1, samples=6, radius=radius)
    bound = (
        radius
        * np.linalg.norm(w[..., 0, 1])
        / np.linalg.norm(x[..., 0] * w[..., 0, 1], axis=(1, 2))
    )
    assert np.all(values > 0) and np.all(values <= bound + 1e-6)
    np.testing.assert_allclose(
        sensitivity(model, x, "gradxinput", 1, samples=6, radius=radius, batch_size=4),
        values,
        atol=1e-6,
    )


def test_sensitivity_and_random_logit_make_the_passes_they_claim():
    model, count = counted_cnn()
    x = random_images(9, (12, 12, 1), seed=5)
    sensitivity(model, x, "vanilla", samples=5)
    # 9 for the predicted classes, 9 original maps, 45 noisy copies.
    assert count.seen.numpy() == 9 + 9 + 45
    count.seen.assign(0.0)
    random_logit_test(model, x, "vanilla", 0)
    assert count.seen.numpy() == 18  # two maps per image; the target was given


def test_bad_sanity_check_arguments():
    model = small_cnn()
    x = random_images(2, (12, 12, 1))
    with pytest.raises(ValueError, match="unknown explanation method 'lrp'; known: vanilla"):
        randomization_test(model, x, "lrp")
    with pytest.raises(ValueError, match="unknown explanation method 'lrp'"):
        sensitivity(model, x, "lrp")
    with pytest.raises(
        ValueError, match=r"similarity must be one of \('spearman', 'ssim', 'hog'\)"
    ):
        randomization_test(model, x, "vanilla", similarity="pearson")
    with pytest.raises(ValueError, match=r"layers \['pool1'\] have no weights to randomise"):
        randomization_test(model, x, "vanilla", layers=["pool1"])
    with pytest.raises(ValueError, match=r"keep must be an image index .* in \[0, 2\), got 5"):
        randomization_test(model, x, "vanilla", keep=5)
    with pytest.raises(ValueError, match="samples must be a positive int"):
        sensitivity(model, x, "vanilla", samples=0)
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        sensitivity(model, x, "vanilla", radius=-1)
    with pytest.raises(TypeError, match="cascade must be True or False"):
        randomization_test(model, x, "vanilla", cascade="yes")


def test_randomization_test_passes_batch_size_to_the_method(monkeypatch):
    import vizkit.methods.explain as explain_module

    seen = []
    real = explain_module.explain

    def recording(model, x, name, targets, **options):
        seen.append(options.get("batch_size"))
        return real(model, x, name, targets, **options)

    monkeypatch.setattr(explain_module, "explain", recording)
    model = small_cnn()
    x = random_images(3)
    randomization_test(model, x, "vanilla", batch_size=2, layers=["conv2"])
    assert seen and set(seen) == {2}  # the original map and the randomised one


def test_checkpoints_compare_the_full_cascades_rows_at_evenly_spaced_steps():
    from vizkit.metrics.randomization import checkpoint_steps

    assert checkpoint_steps(5, None) == {i: i for i in range(5)}
    assert checkpoint_steps(5, 9) == {i: i for i in range(5)}
    assert checkpoint_steps(105, 8) == {
        s: r for r, s in enumerate([0, 15, 30, 45, 59, 74, 89, 104])
    }
    assert checkpoint_steps(7, 1) == {6: 0}  # the last step: every layer random
    with pytest.raises(ValueError, match="checkpoints must be a positive int"):
        checkpoint_steps(5, 0)

    keras.utils.set_random_seed(4)
    inp = keras.Input((12, 12, 1))
    h = inp
    for i in range(5):
        h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name=f"c{i}")(h)
    out = keras.layers.Dense(3, activation="softmax", name="dense")(
        keras.layers.GlobalAveragePooling2D()(h)
    )
    model = keras.Model(inp, out)
    x = random_images(4, seed=6)
    for cascade in (True, False):
        full = randomization_test(model, x, "vanilla", cascade=cascade, keep=[1])
        some = randomization_test(model, x, "vanilla", cascade=cascade, keep=[1], checkpoints=3)
        rows = [0, 2, 5]  # of the 6 layers with weights, output first: linspace(5, 0, 3)
        assert some.layers == tuple(full.layers[r] for r in rows)
        np.testing.assert_allclose(
            some.similarity["spearman"], full.similarity["spearman"][rows], atol=1e-6
        )
        np.testing.assert_allclose(some.maps, full.maps[[0, *(r + 1 for r in rows)]], atol=1e-6)
