"""RBM: known free energies, replayed CD/PCD updates, learning on MNIST-5k, save/load, errors."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_close_f32
from sklearn.neural_network import BernoulliRBM

import models
from models.rbm import RBM

W3 = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]], np.float32)
B3 = np.array([0.1, -0.2, 0.3], np.float32)
C3 = np.array([-0.5, 0.4], np.float32)
V3 = np.array(list(itertools.product([0, 1], repeat=3)), np.float32)  # all 8 binary states


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _tiny(visible="bernoulli", **kw):
    rbm = RBM(3, 2, visible=visible, **kw)
    rbm.set_parameters(weights=W3, visible_bias=B3, hidden_bias=C3)
    return rbm


def _energy(v, h, visible):
    vis = -v @ B3 if visible == "bernoulli" else 0.5 * np.sum((v - B3) ** 2)
    return vis - h @ C3 - v @ W3 @ h


@pytest.fixture(scope="module")
def mnist():
    data = models.load_dataset("mnist5k")
    rows = np.random.default_rng(0).permutation(len(data.x_train))  # the file is sorted by digit
    return data.x_train[rows].reshape(len(rows), -1)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_closed_form_and_brute_force(visible):
    rbm = _tiny(visible)
    v = V3 if visible == "bernoulli" else np.random.default_rng(1).normal(size=(5, 3))
    got = rbm.free_energy(v)
    softplus = np.logaddexp(0.0, v @ W3 + C3).sum(1)
    vis = -v @ B3 if visible == "bernoulli" else 0.5 * np.sum((v - B3) ** 2, axis=1)
    np.testing.assert_allclose(got, vis - softplus, rtol=1e-5, atol=1e-5)
    hidden_states = np.array(list(itertools.product([0, 1], repeat=2)), np.float64)
    brute = [-np.log(sum(np.exp(-_energy(row, h, visible)) for h in hidden_states)) for row in v]
    np.testing.assert_allclose(got, brute, rtol=1e-5, atol=1e-5)


def test_transform_is_exact_hidden_posterior():
    rbm = _tiny()
    hidden_states = np.array(list(itertools.product([0, 1], repeat=2)), np.float64)
    for row, got in zip(V3, rbm.transform(V3), strict=True):
        weights = np.array([np.exp(-_energy(row, h, "bernoulli")) for h in hidden_states])
        np.testing.assert_allclose(got, weights @ hidden_states / weights.sum(), rtol=1e-5)


def test_matches_scikit_learn_with_the_same_parameters():
    rbm = _tiny()
    sk = BernoulliRBM(n_components=2)
    sk.components_, sk.intercept_hidden_, sk.intercept_visible_ = W3.T, C3, B3
    np.testing.assert_allclose(rbm.transform(V3), sk.transform(V3), rtol=1e-5)
    np.testing.assert_allclose(rbm.free_energy(V3), sk._free_energy(V3), rtol=1e-5, atol=1e-6)


def _numpy_step(state, v0, hidden_u, visible_u, *, lr, momentum, decay, persistent):
    """Reference CD-k/PCD-k update: W, b, c, velocities and the chain as float64 NumPy."""
    w, b, c, dw, db, dc, chain = state
    h0 = _sigmoid(v0 @ w + c)
    v = chain if persistent else v0
    for step in range(len(hidden_u)):
        h = (hidden_u[step] < _sigmoid(v @ w + c)).astype(float)
        v = _sigmoid(h @ w.T + b)
        if persistent:
            v = (visible_u[step] < v).astype(float)
    hk = _sigmoid(v @ w + c)
    grads = (
        v0.T @ h0 / len(v0) - v.T @ hk / len(v) - decay * w,
        v0.mean(0) - v.mean(0),
        h0.mean(0) - hk.mean(0),
    )
    velocities = [momentum * d + lr * g for d, g in zip((dw, db, dc), grads, strict=True)]
    params = [p + d for p, d in zip((w, b, c), velocities, strict=True)]
    return (*params, *velocities, v)


def _state(rbm):
    chain = rbm._chain.numpy() if rbm._chain is not None else None
    velocities = (v.numpy() for v in (rbm._dw, rbm._db, rbm._dc))
    return (rbm.weights, rbm.visible_bias, rbm.hidden_bias, *velocities, chain)


def test_cd1_update_by_hand():
    """Uniforms of 1 switch every hidden sample off, so the negative phase is sigmoid(b)."""
    rbm = RBM(2, 2, learning_rate=0.5, momentum=0.0)
    w = np.array([[1.0, -1.0], [0.5, 2.0]], np.float32)
    b, c = np.array([0.2, -0.3], np.float32), np.array([0.0, 0.1], np.float32)
    rbm.set_parameters(weights=w, visible_bias=b, hidden_bias=c)
    v0 = np.array([[1.0, 0.0]], np.float32)
    rbm._step(tf.constant(v0), tf.ones([1, 1, 2]))
    h0 = _sigmoid(np.array([1.0, -1.0]) + c)  # = sigmoid(v0 W + c)
    v1 = _sigmoid(b)
    h1 = _sigmoid(v1 @ w + c)
    expected = w + 0.5 * (np.outer(v0[0], h0) - np.outer(v1, h1))
    # Sums of 2 terms (the sigmoids' inputs) and of 3 (the update), of size a few units.
    assert_close_f32(rbm.weights, expected, n_terms=2 + 3, scale=2 + np.abs(w).max())
    assert_close_f32(rbm.visible_bias, b + 0.5 * (v0[0] - v1), n_terms=2 + 3, scale=1.0)
    assert_close_f32(rbm.hidden_bias, c + 0.5 * (h0 - h1), n_terms=2 + 3, scale=1.0)


@pytest.mark.parametrize(("k", "persistent"), [(1, False), (3, False), (2, True)])
def test_updates_match_numpy_reference(k, persistent):
    rng = np.random.default_rng(0)
    rbm = _tiny(k=k, persistent=persistent, learning_rate=0.3, momentum=0.7, weight_decay=0.01)
    v0 = (rng.random((4, 3)) < 0.5).astype(np.float32)
    if persistent:
        rbm._chain = tf.Variable((rng.random((5, 3)) < 0.5).astype(np.float32))
    state = tuple(None if s is None else s.astype(np.float64) for s in _state(rbm))
    for _ in range(2):  # the second step exercises the momentum buffers
        m = 5 if persistent else 4
        hidden_u = rng.random((k, m, 2)).astype(np.float32)
        visible_u = rng.random((k, m, 3)).astype(np.float32)
        rbm._step(tf.constant(v0), tf.constant(hidden_u), tf.constant(visible_u))
        state = _numpy_step(
            state, v0, hidden_u, visible_u, lr=0.3, momentum=0.7, decay=0.01, persistent=persistent
        )
    got = _state(rbm)
    for mine, ref in zip(got[:6], state[:6], strict=True):
        np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-6)
    if persistent:
        # The chain is binary: exact, unless a uniform fell within rounding of its probability
        # (about 1e-7 apart; none does for this seed).
        np.testing.assert_array_equal(got[6], state[6])


def test_error_falls_on_mnist(mnist):
    x = mnist[:1000]
    rbm = RBM(784, 32, seed=0)
    before = rbm.reconstruction_error(x)
    seen = []
    errors = rbm.fit(
        x, epochs=3, batch_size=10, verbose=False, callback=lambda e, m: seen.append(e)
    )
    assert errors.shape == (3,) and errors.dtype == np.float32 and seen == [0, 1, 2]
    assert np.all(np.diff(errors) < 0)
    assert rbm.reconstruction_error(x) < 0.5 * before
    assert rbm._fns["epoch"].experimental_get_tracing_count() == 1  # compiled once
    recon = rbm.reconstruct(x[:5])
    assert recon.shape == (5, 784) and recon.min() >= 0 and recon.max() <= 1


def test_cosine_error_matches_numpy(mnist):
    rbm = RBM(784, 16, error="cosine", seed=3)
    x = mnist[:50]
    r = rbm.reconstruct(x)
    cos = np.sum(x * r, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1))
    assert rbm.reconstruction_error(x) == pytest.approx(np.mean(np.arccos(cos)) / np.pi, 1e-4)


def test_gaussian_rbm_learns_standardised_data():
    rng = np.random.default_rng(0)
    latent = (rng.random((2000, 4)) < 0.5).astype(np.float32)
    x = latent @ rng.normal(size=(4, 12)).astype(np.float32) + 0.3 * rng.normal(size=(2000, 12))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    rbm = RBM(12, 16, visible="gaussian", learning_rate=0.001, momentum=0.9, seed=0)
    before = rbm.reconstruction_error(x)
    errors = rbm.fit(x, epochs=5, batch_size=20, verbose=False)
    assert np.all(np.isfinite(errors)) and errors[-1] < errors[0]
    assert rbm.reconstruction_error(x) < 0.6 * before
    assert rbm.sample(3, gibbs_steps=5, seed=1).shape == (3, 12)


def test_pcd_runs_and_keeps_binary_chains(mnist):
    x = mnist[:500]
    rbm = RBM(784, 16, persistent=True, momentum=0.5, k=2, seed=0)
    errors = rbm.fit(x, epochs=2, batch_size=25, verbose=False)
    assert np.all(np.isfinite(errors)) and errors[-1] < errors[0]
    chain = rbm._chain.numpy()
    assert chain.shape == (25, 784) and set(np.unique(chain)) <= {0.0, 1.0}


def test_sample_known_marginals_and_range():
    rbm = RBM(6, 3)
    bias = np.array([-3, -1, 0, 0.5, 2, 4], np.float32)
    rbm.set_parameters(weights=np.zeros((6, 3)), visible_bias=bias)  # v independent of h
    out = rbm.sample(4, gibbs_steps=3, seed=7)
    np.testing.assert_allclose(out, np.tile(_sigmoid(bias), (4, 1)), rtol=1e-6)
    trained = _tiny()
    a = trained.sample(50, gibbs_steps=20, seed=1)
    assert a.shape == (50, 3) and a.min() >= 0 and a.max() <= 1
    # Exact: the same compiled chain with the same seed.
    np.testing.assert_array_equal(a, trained.sample(50, gibbs_steps=20, seed=1))
    init = np.ones((2, 3), np.float32)
    assert trained.sample(2, gibbs_steps=1, init=init).shape == (2, 3)


def test_save_load_round_trip(tmp_path, mnist):
    rbm = RBM(784, 8, persistent=True, momentum=0.5, error="cosine", seed=5)
    rbm.fit(mnist[:100], epochs=1, batch_size=10, verbose=False)
    path = rbm.save(tmp_path / "sub" / "rbm")
    assert path.name == "rbm.npz" and not list(path.parent.glob("*.tmp"))
    back = RBM.load(tmp_path / "sub" / "rbm")
    assert back.get_config() == rbm.get_config()
    # Exact: the loaded state is a copy, and the same computation on the same weights and
    # input shape gives the same bits.
    for name, var in rbm._state().items():
        np.testing.assert_array_equal(back._state()[name].numpy(), var.numpy())
    np.testing.assert_array_equal(back.transform(mnist[:10]), rbm.transform(mnist[:10]))
    with np.load(path, allow_pickle=False) as data:  # loads without pickle
        arrays = dict(data)
    del arrays["weights"]
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="weights"):
        RBM.load(tmp_path / "broken.npz")


def test_accepts_images_and_uint8(mnist):
    rbm = _tiny()
    images = V3.reshape(8, 1, 3, 1)
    np.testing.assert_allclose(rbm.transform(images), rbm.transform(V3))
    np.testing.assert_allclose(rbm.transform((V3 * 255).astype(np.uint8)), rbm.transform(V3))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((4, 5)), r"shape \(N, 3\)"),
        (np.zeros((0, 3)), "at least one row"),
        (np.float32(1.0), "at least one row"),
        (np.array([[0.0, np.nan, 1.0]]), "NaN"),
        (np.array([[0.0, 2.0, 1.0]]), r"\[0, 1\]"),
    ],
)
def test_bad_data_errors(x, match):
    rbm = _tiny()
    with pytest.raises(ValueError, match=match):
        rbm.transform(x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"visible": "poisson"}, "visible"),
        ({"k": 0}, "k must"),
        ({"momentum": 1.5}, "momentum"),
        ({"error": "l1"}, "error"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_bad_options_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RBM(3, 2, **kwargs)


def test_fit_and_sample_argument_errors():
    rbm = _tiny()
    with pytest.raises(ValueError, match="epochs"):
        rbm.fit(V3, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        rbm.fit(V3, epochs=1, batch_size=-2)
    with pytest.raises(ValueError, match="n=4 rows"):
        rbm.sample(4, init=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="gaussian"):
        rbm.fit(V3 * 3, epochs=1)
