"""models.train: learning-rate schedules, weight decay and optimizer instances."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models.datasets import Dataset


def _tiny_dataset(n: int = 40) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.random((n, 6, 6, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    return Dataset(x, y, x[:8], y[:8], ["low", "high"], "tiny", "random test data")


def _tiny_model() -> keras.Model:
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))


def _fit(**kwargs) -> keras.Model:
    defaults = {"epochs": 4, "batch_size": 8, "validation_split": 0.0, "verbose": False}
    return models.train(_tiny_model(), _tiny_dataset(), **{**defaults, **kwargs}).model


def test_cosine_schedule_warms_up_over_the_first_epoch_then_decays_to_zero():
    model = _fit(schedule="cosine", learning_rate=0.05, optimizer="sgd")
    optimizer = model.optimizer
    schedule = optimizer._learning_rate
    per_epoch, total = 5, 20  # 40 images in batches of 8, 4 epochs
    assert int(optimizer.iterations) == total
    rates = [float(schedule(step)) for step in (0, 2, per_epoch, 10, total)]
    # Warm-up: total // 10 = 2 steps (shorter than an epoch here), linear from 0.
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.05)
    # Cosine from the peak: halfway through the decay the rate is half the peak.
    halfway = 2 + (total - 2) / 2
    assert float(schedule(halfway)) == pytest.approx(0.025, rel=1e-5)
    assert rates[2] < 0.05 and rates[4] == pytest.approx(0.0, abs=1e-9)


def test_constant_schedule_keeps_the_given_rate():
    model = _fit(learning_rate=0.02, optimizer="sgd")
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_weight_decay_shrinks_the_weights():
    kwargs = {"optimizer": "sgd", "learning_rate": 0.5, "epochs": 6}
    plain = _fit(**kwargs)
    decayed = _fit(weight_decay=0.5, **kwargs)
    norm = lambda m: float(np.linalg.norm(m.get_layer("conv").kernel.numpy()))  # noqa: E731
    # Same seed, same data: only the decay differs, and it pulls the kernel towards zero.
    assert norm(decayed) < 0.5 * norm(plain)
    assert decayed.optimizer.weight_decay == pytest.approx(0.5)


def test_optimizer_instance_with_schedule():
    sgd = keras.optimizers.SGD(learning_rate=0.03, momentum=0.9, nesterov=True)
    model = _fit(optimizer=sgd, schedule="cosine")
    assert model.optimizer is sgd
    assert float(sgd._learning_rate(2)) == pytest.approx(0.03)  # peak = the instance's rate


def test_bad_optimizer_options_are_named():
    with pytest.raises(ValueError, match=r"schedule must be one of \('constant', 'cosine'\)"):
        _fit(schedule="step")
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        _fit(weight_decay=-1.0)
    with pytest.raises(ValueError, match="pass weight_decay to its constructor"):
        _fit(optimizer=keras.optimizers.SGD(), weight_decay=1e-4)
    with pytest.raises(ValueError, match="unknown optimizer 'sgdd'"):
        _fit(optimizer="sgdd")
