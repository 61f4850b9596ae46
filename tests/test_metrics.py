"""vizkit.metrics, faithfulness and map statistics: known answers on hand-built models and a
float64 NumPy reference for deletion / insertion."""

import keras
import numpy as np
import pytest
from helpers import assert_close_f32, chain_terms, counted_cnn, linear_model
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

import vizkit
from vizkit.metrics import (
    completeness,
    complexity,
    deletion,
    hog_similarity,
    insertion,
    mufidelity,
    similarity,
    sparseness,
    spearman,
    ssim,
)


# -- tiny models whose answers are known -------------------------------------------------------
def mlp(shape=(6, 5, 2), hidden=8, classes=3, *, activation="relu", softmax=True, seed=0):
    """Flatten -> Dense(hidden) -> Dense(classes[, softmax]) with seeded random weights."""
    rng = np.random.default_rng(seed)
    inp = keras.Input(shape)
    h = keras.layers.Flatten()(inp)
    dense1 = keras.layers.Dense(hidden, activation=activation)
    dense2 = keras.layers.Dense(classes, activation="softmax" if softmax else None)
    model = keras.Model(inp, dense2(dense1(h)), name="mlp")
    size = int(np.prod(shape))
    w1, b1 = rng.normal(0, 1, (size, hidden)) / np.sqrt(size), rng.normal(0, 0.1, hidden)
    w2, b2 = rng.normal(0, 1, (hidden, classes)), rng.normal(0, 0.1, classes)
    dense1.set_weights([w1.astype(np.float32), b1.astype(np.float32)])
    dense2.set_weights([w2.astype(np.float32), b2.astype(np.float32)])
    return model, (w1, b1, w2, b2)


def mlp_numpy(x, weights, activation="relu"):
    """The float64 forward pass of :func:`mlp` (softmax probabilities)."""
    w1, b1, w2, b2 = weights
    h = x.reshape(len(x), -1).astype(np.float64) @ w1 + b1
    h = np.maximum(h, 0) if activation == "relu" else np.tanh(h)
    z = h @ w2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_curve(x, maps, baseline, target, steps, weights, insert=False):
    """Petsiuk et al.'s deletion / insertion in float64, written from the issue's definition."""
    n, h, w = x.shape[:3]
    out = np.empty((n, steps + 1))
    for i in range(n):
        score = maps[i].mean(axis=-1) if maps.ndim == 4 else maps[i]
        score = np.where(np.isnan(score), -np.inf, score).ravel()
        order = sorted(range(h * w), key=lambda p: (-score[p], p))  # highest first, ties in order
        for s in range(steps + 1):
            k = (s * h * w) // steps
            chosen = np.zeros(h * w, bool)
            chosen[order[:k]] = True
            chosen = chosen.reshape(h, w, 1)
            img = (
                np.where(chosen, x[i], baseline[i])
                if insert
                else np.where(chosen, baseline[i], x[i])
            )
            out[i, s] = mlp_numpy(img[None], weights)[0, target[i]]
    return ((out[:, :-1] + out[:, 1:]) / 2).mean(axis=1), out


def quadrant_model(side=8):
    """Reads only the top-left quadrant: class 0 = mean of it, class 1 = 0."""
    inp = keras.Input((side, side, 1))
    h = keras.layers.Cropping2D(((0, side // 2), (0, side // 2)))(inp)
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inp, dense(keras.layers.Flatten()(h)), name="quadrant")
    kernel = np.zeros(((side // 2) ** 2, 2), np.float32)
    kernel[:, 0] = 1.0 / (side // 2) ** 2
    dense.set_weights([kernel])
    return model


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(1)
    model, weights = mlp()
    x = rng.random((5, 6, 5, 2), dtype=np.float32)
    maps = rng.normal(size=(5, 6, 5, 2)).astype(np.float32)
    maps[0, :2] = 1.0  # ties: kept in pixel order
    maps[1, 0, 0] = np.nan  # NaN comes last
    return model, weights, x, maps


# -- deletion / insertion --------------------------------------------------------------------------
@pytest.mark.parametrize("insert", [False, True], ids=["deletion", "insertion"])
@pytest.mark.parametrize("steps", [1, 7, 10, 30])
def test_deletion_and_insertion_match_a_numpy_reference(setup, insert, steps):
    model, weights, x, maps = setup
    rng = np.random.default_rng(steps)
    baseline = rng.random(x.shape[1:], dtype=np.float32)  # one image for all
    target = np.array([0, 1, 2, 0, 1])
    fn = insertion if insert else deletion
    values, curves = fn(model, x, maps, target, steps=steps, baseline=baseline, return_curve=True)
    ref_values, ref_curves = reference_curve(
        x, maps, np.broadcast_to(baseline, x.shape), target, steps, weights, insert
    )
    assert values.dtype == np.float32 and values.shape == (5,) and curves.shape == (5, steps + 1)
    # float32 probabilities in [0, 1]: a few ulps of 1.
    np.testing.assert_allclose(curves, ref_curves, atol=1e-6)
    np.testing.assert_allclose(values, ref_values, atol=1e-6)
    assert np.allclose(
        fn(model, x, maps, target, steps=steps, baseline=baseline), values, atol=1e-7
    )


def test_curve_ends_are_the_image_and_the_baseline(setup):
    model, weights, x, maps = setup
    target = np.arange(5) % 3
    probs = mlp_numpy(x, weights)[np.arange(5), target]
    blank = mlp_numpy(np.full_like(x, 0.25), weights)[np.arange(5), target]
    _, dele = deletion(model, x, maps, target, baseline=0.25, return_curve=True)
    _, ins = insertion(model, x, maps, target, baseline=0.25, return_curve=True)
    np.testing.assert_allclose(dele[:, 0], probs, atol=1e-6)
    np.testing.assert_allclose(dele[:, -1], blank, atol=1e-6)
    np.testing.assert_allclose(ins[:, 0], blank, atol=1e-6)
    np.testing.assert_allclose(ins[:, -1], probs, atol=1e-6)


def test_blur_baseline_and_per_image_baseline(setup):
    model, weights, x, maps = setup
    target = [0, 0, 1, 1, 2]
    blurred = gaussian_filter(x, sigma=(0, 5 / 8, 5 / 8, 0), mode="nearest")
    by_name = deletion(model, x, maps, target, baseline="blur")
    given = deletion(model, x, maps, target, baseline=blurred)
    ref, _ = reference_curve(x, maps, blurred, np.array(target), 10, weights)
    np.testing.assert_allclose(by_name, given, atol=1e-6)
    np.testing.assert_allclose(given, ref, atol=1e-6)


def test_chunking_does_not_change_the_result(setup):
    model, _, x, maps = setup
    whole = deletion(model, x, maps, 1, steps=12, return_curve=True)[1]
    for size in (1, 5, 13):  # one copy per call, copies of one image split, several images
        part = deletion(model, x, maps, 1, steps=12, return_curve=True, batch_size=size)[1]
        np.testing.assert_allclose(part, whole, atol=1e-6)


def test_uint8_images_are_scaled_like_everywhere_else(setup):
    model, _, x, maps = setup
    as_uint8 = np.round(x * 255).astype(np.uint8)
    np.testing.assert_allclose(
        deletion(model, as_uint8, maps, 0),
        deletion(model, as_uint8.astype(np.float32) / 255, maps, 0),
        atol=1e-6,
    )


def test_predicted_class_is_the_default_target(setup):
    model, weights, x, maps = setup
    predicted = mlp_numpy(x, weights).argmax(axis=1)
    np.testing.assert_allclose(
        deletion(model, x, maps), deletion(model, x, maps, predicted), atol=1e-7
    )


def test_gradient_x_input_deletion_is_optimal_for_a_linear_model():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 6, 3, 2)).astype(np.float32)
    model = linear_model(w)
    x = rng.random((4, 6, 6, 3), dtype=np.float32)
    # Exact per-pixel contributions of class 1 (all channels of a pixel go together).
    contributions = (x * w[..., 1]).sum(axis=-1).reshape(4, -1).astype(np.float64)
    gxi = vizkit.explain(model, x, "gradxinput", 1, reduce="sum")
    steps = 9
    values, curves = deletion(model, x, gxi, 1, steps=steps, return_curve=True)
    # Known answer: after k pixels the score is the total minus the k largest contributions.
    best = np.sort(contributions, axis=1)[:, ::-1]
    cum = np.concatenate([np.zeros((4, 1)), np.cumsum(best, axis=1)], axis=1)
    counts = (np.arange(steps + 1) * 36) // steps
    expected = contributions.sum(axis=1, keepdims=True) - cum[:, counts]
    np.testing.assert_allclose(curves, expected, atol=1e-4)  # float32 sums of 108 terms
    # It drops fastest of any ranking: other maps' curves lie above it at every step.
    others = {
        "vanilla": vizkit.explain(model, x, "vanilla", 1),
        "absolute gradxinput": vizkit.explain(model, x, "gradxinput", 1),
        "random": rng.random((4, 6, 6)),
        "reversed": -gxi,
    }
    for name, other in others.items():
        v, c = deletion(model, x, other, 1, steps=steps, return_curve=True)
        assert np.all(c >= curves - 1e-4), name
        assert np.all(v >= values - 1e-5), name
    assert np.all(deletion(model, x, -gxi, 1, steps=steps) > values + 0.1)


def test_a_map_on_the_quadrant_the_model_reads_is_near_perfect():
    rng = np.random.default_rng(3)
    model = quadrant_model(8)
    x = (0.5 + 0.5 * rng.random((3, 8, 8, 1))).astype(np.float32)
    score = x[:, :4, :4, 0].mean(axis=(1, 2))
    vanilla = vizkit.explain(model, x, "vanilla", 0)  # nonzero exactly on the quadrant
    assert np.all(vanilla[:, :4, :4] > 0) and np.all(vanilla[:, 4:] == 0)
    assert np.all(vanilla[:, :, 4:] == 0)
    steps = 4  # step 1 removes 16 pixels: the whole quadrant
    values, curves = deletion(model, x, vanilla, 0, steps=steps, return_curve=True)
    np.testing.assert_allclose(curves[:, 0], score, atol=1e-6)
    np.testing.assert_allclose(curves[:, 1:], 0.0, atol=1e-6)
    # The best a curve starting at score(x) can do: score / (2 steps).
    np.testing.assert_allclose(values, score / (2 * steps), atol=1e-6)
    inserted = insertion(model, x, vanilla, 0, steps=steps)
    np.testing.assert_allclose(inserted, score * (1 - 1 / (2 * steps)), atol=1e-6)
    # A map on another quadrant leaves the score intact until the last step.
    wrong = np.zeros((3, 8, 8))
    wrong[:, 4:, 4:] = 1.0
    assert np.all(deletion(model, x, wrong, 0, steps=steps) > 3 * values)


def test_deletion_is_batched_not_one_pass_per_step_and_image():
    model, count = counted_cnn()
    rng = np.random.default_rng(4)
    x = rng.random((32, 12, 12, 1), dtype=np.float32)
    maps = rng.random((32, 12, 12))
    values = deletion(model, x, maps, steps=10, batch_size=32)
    calls, seen = count.calls.numpy(), count.seen.numpy()
    # 32 x 11 copies in chunks of <= 32 inputs (2 images x 11 copies per call): 16 calls, not
    # 32 x 11; the predicted classes are read off the copies that are the images themselves.
    assert seen == 32 * 11
    assert calls == 16
    # The same values as with the predicted classes given (float32: other batches, other sums).
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    terms = chain_terms(model)
    given = deletion(model, x, maps, predicted, steps=10, batch_size=32)
    assert_close_f32(values, given, n_terms=terms, scale=1.0)
    revealed = insertion(model, x, maps, steps=10)  # the image itself is the last copy
    given = insertion(model, x, maps, predicted, steps=10)
    assert_close_f32(revealed, given, n_terms=terms, scale=1.0)


def test_default_batch_size_grows_for_small_images():
    model, count = counted_cnn()
    rng = np.random.default_rng(4)
    x = rng.random((32, 12, 12, 1), dtype=np.float32)
    deletion(model, x, rng.random((32, 12, 12)), steps=10)
    # 12x12x1 inputs are small: the default is 128 inputs a call, 11 images x 11 copies,
    # so ceil(32 / 11) calls.
    assert count.seen.numpy() == 32 * 11
    assert count.calls.numpy() == 3


def test_mufidelity_is_one_for_exact_linear_attributions_and_seeded():
    rng = np.random.default_rng(5)
    model = linear_model(rng.normal(size=(9, 9, 2, 2)).astype(np.float32))
    x = rng.random((3, 9, 9, 2), dtype=np.float32)
    exact = vizkit.explain(model, x, "gradxinput", 0, reduce="none")  # (N, H, W, C) signed
    values = mufidelity(model, x, exact, 0, samples=64, grid=3)
    np.testing.assert_allclose(values, 1.0, atol=1e-5)
    noisy = exact + rng.normal(0, exact.std(), exact.shape).astype(np.float32)
    a = mufidelity(model, x, noisy, 0, samples=32, seed=7)
    assert np.all(a < 0.999) and np.all(a > 0)
    np.testing.assert_allclose(
        mufidelity(model, x, noisy, 0, samples=32, seed=7, batch_size=5), a, atol=1e-6
    )
    assert not np.allclose(mufidelity(model, x, noisy, 0, samples=32, seed=8), a)
    assert np.isnan(mufidelity(model, x, np.zeros((3, 9, 9)), 0, samples=8)).all()


def test_mufidelity_matches_a_numpy_reference(setup):
    model, weights, x, maps = setup
    samples, grid, subset = 20, 3, 0.3
    got = mufidelity(model, x, maps, 2, samples=samples, grid=grid, subset=subset, seed=4)
    cells = np.random.default_rng(4).random((samples, grid * grid)) < subset
    rows = (np.arange(6) * grid) // 6
    cols = (np.arange(5) * grid) // 5
    pixel_cell = rows[:, None] * grid + cols[None, :]
    mean_maps = np.nan_to_num(maps.astype(np.float64).mean(axis=-1))
    for i in range(len(x)):
        sums, drops = [], []
        full = mlp_numpy(x[i : i + 1], weights)[0, 2]
        for j in range(samples):
            removed = cells[j][pixel_cell]
            sums.append(mean_maps[i][removed].sum())
            img = np.where(removed[..., None], 0.0, x[i])
            drops.append(full - mlp_numpy(img[None], weights)[0, 2])
        assert got[i] == pytest.approx(np.corrcoef(sums, drops)[0, 1], abs=1e-5)


# -- completeness --------------------------------------------------------------------------
def test_completeness_of_integrated_gradients_on_a_smooth_model():
    model, _ = mlp((5, 5, 1), activation="tanh", softmax=False, seed=3)
    x = np.random.default_rng(6).random((4, 5, 5, 1), dtype=np.float32)
    error, total, delta = completeness(model, x, steps=64, return_parts=True)
    assert np.all(error < 1e-3), error
    assert np.all(np.abs(delta) > 1e-2)
    np.testing.assert_allclose(total, delta, atol=1e-3 * np.abs(delta).max())
    # One path point is far from complete: the metric can fail.
    assert completeness(model, x, steps=1).max() > 10 * error.max()


def test_completeness_of_given_attributions():
    rng = np.random.default_rng(7)
    model = linear_model(rng.normal(size=(4, 4, 3, 2)).astype(np.float32))
    x = rng.random((3, 4, 4, 3), dtype=np.float32)
    gxi = vizkit.explain(model, x, "gradxinput", 1, reduce="none")
    assert completeness(model, x, gxi, 1).max() < 1e-5  # exact for a bias-free linear model
    summed = gxi.sum(axis=-1)  # (N, H, W) maps whose channels were summed work too
    assert completeness(model, x, summed, 1).max() < 1e-5
    plain = vizkit.explain(model, x, "vanilla", 1, reduce="none")
    assert completeness(model, x, plain, 1).min() > 0.05


# -- map statistics -------------------------------------------------------------------------
def test_sparseness_and_complexity_against_hand_computed_values():
    maps = np.array(
        [
            [[0.0, 0.0], [0.0, 1.0]],  # one pixel holds everything
            [[2.0, 2.0], [2.0, 2.0]],  # uniform
            [[1.0, -2.0], [3.0, 4.0]],  # |.| sorted 1, 2, 3, 4
            [[1.0, 1.0], [2.0, 0.0]],
        ]
    )
    np.testing.assert_allclose(sparseness(maps)[:3], [3 / 4, 0.0, 10 / 40], atol=1e-7)
    assert complexity(maps)[0] == 0.0
    np.testing.assert_allclose(complexity(maps)[1], np.log(4), atol=1e-6)
    np.testing.assert_allclose(complexity(maps)[3], 1.5 * np.log(2), atol=1e-6)
    # (N, H, W, C) counts every value; NaN counts as zero; an all-zero map has neither.
    assert sparseness(maps[:, :, :, None]).shape == (4,)
    with_nan = maps.copy()
    with_nan[0, 0, 0] = np.nan
    np.testing.assert_allclose(sparseness(with_nan), sparseness(maps), atol=1e-7)
    assert np.isnan(sparseness(np.zeros((1, 3, 3)))).all()
    assert np.isnan(complexity(np.zeros((1, 3, 3)))).all()


def test_similarity_measures():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(3, 24, 24))
    for fn in (spearman, ssim, hog_similarity):
        np.testing.assert_allclose(fn(a, a), 1.0, atol=1e-6)
    # Spearman of absolute maps: the sign does not matter; it is scipy's coefficient.
    np.testing.assert_allclose(spearman(a, -a), 1.0, atol=1e-6)
    b = rng.normal(size=(3, 24, 24))
    expected = [spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel())[0] for i in range(3)]
    np.testing.assert_allclose(spearman(a, b), expected, atol=1e-6)
    # Ties (rounded maps, a digit's black background) get average ranks, as scipy gives them.
    tied_a, tied_b = np.round(a, 1), np.round(b, 0)
    tied_b[0, :12] = 0.0
    expected = [
        spearmanr(np.abs(tied_a[i]).ravel(), np.abs(tied_b[i]).ravel())[0] for i in range(3)
    ]
    np.testing.assert_allclose(spearman(tied_a, tied_b), expected, atol=1e-6)
    np.testing.assert_allclose(spearman(tied_b, tied_a), expected, atol=1e-6)
    assert np.all(np.abs(similarity(a, b, "ssim")) < 0.3)
    assert np.all(np.abs(similarity(a, b, "hog")) < 0.6)
    # Constant maps: 1 when both are flat, 0 when one is (not NaN).
    flat = np.zeros((3, 24, 24))
    np.testing.assert_allclose(spearman(flat, flat), 1.0)
    np.testing.assert_allclose(spearman(a, flat), 0.0)
    np.testing.assert_allclose(hog_similarity(a, flat), 0.0)
    assert similarity(a[:, :9, :9], b[:, :9, :9], "hog").shape == (3,)  # small maps: smaller cells


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"attributions": np.zeros((4, 6, 5))},
            r"attributions must have shape \(N, H, W\) = \(5, 6, 5\)",
        ),
        ({"attributions": np.zeros((5, 5, 6))}, r"got \(5, 5, 6\)"),
        ({"steps": 0}, "steps must be a positive int, got 0"),
        ({"steps": 2.5}, "steps must be a positive int"),
        ({"steps": True}, "steps must be a positive int"),
        (
            {"baseline": np.zeros((3, 3))},
            r"baseline must be a number, 'blur', an image of shape \(H, W, C\) = \(6, 5, 2\).*got an array of shape \(3, 3\)",
        ),
        ({"baseline": "grey"}, "baseline must be a number, 'blur'.*got 'grey'"),
        ({"baseline": None}, "baseline must be a number"),
        ({"baseline": np.full((6, 5, 2), np.nan)}, "baseline must be finite"),
        ({"targets": 7}, "target 7 is out of range"),
    ],
)
def test_bad_input_gets_one_clear_error(setup, kwargs, match):
    model, _, x, maps = setup
    args = {"attributions": maps, **kwargs}
    for fn in (deletion, insertion):
        with pytest.raises(ValueError, match=match):
            fn(model, x, **args)


def test_bad_mufidelity_and_completeness_arguments(setup):
    model, _, x, maps = setup
    with pytest.raises(ValueError, match=r"grid must be between 1 and min\(H, W\) = 5, got 6"):
        mufidelity(model, x, maps, grid=6)
    with pytest.raises(ValueError, match=r"subset must be a fraction in \(0, 1\), got 1.5"):
        mufidelity(model, x, maps, subset=1.5)
    with pytest.raises(ValueError, match="samples must be an int >= 2"):
        mufidelity(model, x, maps, samples=1)
    with pytest.raises(ValueError, match=r"attributions must have shape \(N, H, W, C\)"):
        completeness(model, x, maps[:, :3])
    with pytest.raises(ValueError, match="must be finite"):
        completeness(model, x, np.full(x.shape, np.nan))
    with pytest.raises(ValueError, match="infinite"):
        deletion(model, x, np.full(x.shape, np.inf))
    with pytest.raises(ValueError, match=r"shape \(N, H, W\) or \(N, H, W, C\)"):
        sparseness(np.ones(4))


def test_average_ranks_match_scipy():
    from scipy.stats import rankdata

    from vizkit.metrics.map_similarity import average_ranks

    rng = np.random.default_rng(9)
    rows = np.round(rng.normal(size=(6, 57)), 1)  # many ties
    rows[0] = 0.0  # one run over a whole row
    for values in (rows, rows.astype(np.float32), rng.normal(size=(2, 5))):
        np.testing.assert_array_equal(average_ranks(values), rankdata(values, axis=1))


def test_pixel_ranks_are_a_stable_descending_order():
    from vizkit.metrics.perturbation import pixel_ranks

    rng = np.random.default_rng(11)
    maps = np.round(rng.normal(size=(5, 9, 7)), 1).astype(np.float32)  # many ties
    maps[0, 0, :3] = np.nan
    maps[1, 1, :2], maps[1, 1, 2:4] = -0.0, 0.0  # equal values: index order
    maps[2, 0, :2], maps[2, 1, :2] = np.inf, -np.inf
    maps[3] = 7.0
    for values in (maps, maps.astype(np.float16), maps.astype(np.float64)):
        flat = np.asarray(values, np.float64).reshape(5, -1)
        # The reference: a plain Python sort on (-value, index), NaN as -inf.
        expected = np.empty(flat.shape, np.int32)
        for i, row in enumerate(flat):
            key = [(-(-np.inf if np.isnan(v) else v), j) for j, v in enumerate(row)]
            for place, (_, j) in enumerate(sorted(key)):
                expected[i, j] = place
        np.testing.assert_array_equal(pixel_ranks(values), expected.reshape(values.shape))
