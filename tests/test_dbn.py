"""DBN: greedy pretraining, Keras conversion from RBM weights, fine-tuning, label units."""

import numpy as np
import pytest
from helpers import assert_close_f32

import models
from models.dbn import DBN


def sigmoid_scale(x, rbms):
    """The size of the sums behind the top layer's sigmoid outputs: sum |v W| + |c| of each
    layer, at most, times the sigmoid's slope of at most 1/4."""
    size, v = 0.0, np.abs(x.reshape(len(x), -1))
    for rbm in rbms:
        pre = v @ np.abs(rbm.weights) + np.abs(rbm.hidden_bias)
        size, v = max(size, float(pre.max())), np.ones_like(pre)
    return 0.25 * size


@pytest.fixture(scope="module")
def mnist():
    data = models.load_dataset("mnist5k")
    rows = np.random.default_rng(0).permutation(len(data.x_train))[:2000]  # all ten classes
    return data.x_train[rows], data.y_train[rows], data.x_test, data.y_test


def test_pretrain_is_greedy_and_layerwise(mnist):
    x = mnist[0][:600]
    dbn = DBN([784, 32, 16], momentum=0.9, seed=1)
    errors = dbn.pretrain(x, epochs=3, batch_size=10, verbose=False)
    assert [e.shape for e in errors] == [(3,), (3,)]
    assert all(np.all(np.diff(e) < 0) for e in errors)
    # the second RBM was trained on the first one's hidden probabilities
    h1 = dbn.rbms[0].transform(x)
    assert dbn.rbms[1].reconstruction_error(h1) == pytest.approx(errors[1][-1], rel=0.3)
    expected = dbn.rbms[1].transform(h1)
    scale = sigmoid_scale(x, dbn.rbms)
    assert_close_f32(dbn.transform(x), expected, n_terms=784 + 32, scale=scale)


def test_to_keras_reproduces_the_stack(mnist):
    x = mnist[0][:200]
    dbn = DBN([784, 24, 12], seed=0)
    dbn.pretrain(x, epochs=1, verbose=False)
    model = dbn.to_keras(10)
    assert model.input_shape == (None, 28, 28, 1)
    assert [layer.name for layer in model.layers[-3:]] == ["rbm1", "rbm2", "predictions"]
    np.testing.assert_array_equal(model.get_layer("rbm1").get_weights()[0], dbn.rbms[0].weights)
    np.testing.assert_array_equal(model.get_layer("rbm2").get_weights()[1], dbn.rbms[1].hidden_bias)
    import keras

    top = keras.Model(model.inputs, model.get_layer("rbm2").output)
    # Keras' Dense + sigmoid against the RBM's own TensorFlow code: 784 + 24 terms.
    scale = sigmoid_scale(x, dbn.rbms)
    assert_close_f32(top.predict(x, verbose=0), dbn.transform(x), n_terms=784 + 24, scale=scale)


def test_fine_tune_reaches_80_percent(mnist):
    x, y, x_test, y_test = mnist
    dbn = DBN([784, 128, 64], momentum=0.9, seed=0)
    dbn.pretrain(x, epochs=2, batch_size=10, verbose=False)
    model = dbn.fine_tune(
        x, y, epochs=5, batch_size=32, x_test=x_test, y_test=y_test, verbose=False
    )
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    assert accuracy > 0.80
    assert "val_accuracy" in model.history.history


def test_label_units_on_top_rbm_classify(mnist):
    x, y, x_test, y_test = mnist
    dbn = DBN([784, 128, 64], momentum=0.9, seed=0)
    errors = dbn.pretrain(x, y=y, epochs=3, batch_size=10, verbose=False)
    assert dbn.rbms[-1].n_visible == 128 + 10  # 128 hidden units + 10 label units
    assert errors[-1][-1] < errors[-1][0]
    assert np.mean(dbn.predict(x_test) == y_test) > 0.6
    assert dbn.transform(x_test[:5]).shape == (5, 64)
    assert dbn.to_keras(10).get_layer("rbm2").get_weights()[0].shape == (128, 64)


def test_errors():
    with pytest.raises(ValueError, match="layer_sizes"):
        DBN([784])
    with pytest.raises(ValueError, match="layer_sizes"):
        DBN([784, 0])
    dbn = DBN([4, 3])
    x = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match="label units"):
        dbn.predict(x)
    with pytest.raises(ValueError, match="one label per row"):
        dbn.fine_tune(x, np.zeros(3, int), epochs=1, verbose=False)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        dbn.pretrain(np.zeros((5, 6)), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="num_classes"):
        dbn.to_keras(1)
