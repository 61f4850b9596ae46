"""The float32 tolerance helpers: they accept any summation order and reject a lost term."""

import numpy as np
import pytest
from helpers import EPS32, assert_close_f32, chain_terms, f32_tol, small_cnn


def _sum_in_order(terms, order):
    total = np.float32(0.0)
    for i in order:
        total = np.float32(total + terms[i])
    return total


def test_f32_tol_is_a_few_n_eps_s():
    assert EPS32 == 2.0**-23
    assert f32_tol(64, 8.0) == pytest.approx(4 * 64 * 2.0**-23 * 8.0)
    assert f32_tol(10, 1.0, factor=1) == pytest.approx(10 * 2.0**-23)
    with pytest.raises(ValueError, match="n_terms"):
        f32_tol(0, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_any_summation_order_passes_and_a_lost_term_fails(seed):
    rng = np.random.default_rng(seed)
    n = 256
    terms = (rng.random(n) * rng.choice([-1, 1], n)).astype(np.float32)
    scale = float(np.abs(terms).sum())
    exact = float(np.sum(terms.astype(np.float64)))
    forward = _sum_in_order(terms, range(n))
    backward = _sum_in_order(terms, reversed(range(n)))
    shuffled = _sum_in_order(terms, rng.permutation(n))
    blocked = np.float32(terms.reshape(16, 16).sum(axis=0, dtype=np.float32).sum(dtype=np.float32))
    for got in (forward, backward, shuffled, blocked):
        assert_close_f32(got, exact, n_terms=n, scale=scale)
        assert_close_f32(got, forward, n_terms=n, scale=scale)
    # Losing a typical term (about 0.5) is far outside the tolerance (4 n eps32 sum|terms|,
    # about 0.016 here); only terms below the tolerance itself could hide.
    lost = float(np.sort(np.abs(terms))[n // 2])
    assert lost > 10 * f32_tol(n, scale)
    with pytest.raises(AssertionError):
        assert_close_f32(exact - lost, exact, n_terms=n, scale=scale)


def test_chain_terms_counts_fan_ins():
    model = small_cnn()  # conv 3x3x1, pool, conv 3x3x4 "same" on 5x5, flatten 150, dense
    assert chain_terms(model, "conv1") == 9
    assert chain_terms(model, "conv2") == 9 + 36
    assert chain_terms(model) == 9 + 36 + 150
    with pytest.raises(ValueError, match="no layer"):
        chain_terms(model, "nope")
