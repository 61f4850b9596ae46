"""LeNet-5 builders, training on a tiny subset, saving and loading models."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

import models
from models.training import load_sidecar, save_model

LENET_LAYERS = [
    "input",
    "c1_conv",
    "s2_pool",
    "c3_conv",
    "s4_pool",
    "c5_conv",
    "flatten",
    "f6_dense",
    "predictions",
]


@pytest.mark.parametrize("name", ["lenet5", "lenet5_relu"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1)])
def test_lenet5_layers_and_parameter_counts(name, shape):
    model = models.create_model(name, shape)
    assert [layer.name for layer in model.layers] == LENET_LAYERS
    params = {layer.name: layer.count_params() for layer in model.layers}
    # seed 001, section 5.4: C1 (5*5+1)*6, C3 (5*5*6+1)*16; C5 a 5x5 conv over S4's 16 maps
    assert params["c1_conv"] == (5 * 5 + 1) * 6 == 156
    assert params["c3_conv"] == (5 * 5 * 6 + 1) * 16 == 2416
    assert params["c5_conv"] == (5 * 5 * 16 + 1) * 120
    assert params["f6_dense"] == (120 + 1) * 84 and params["predictions"] == (84 + 1) * 10
    assert model.get_layer("s4_pool").output.shape[1:] == (5, 5, 16)
    assert model.get_layer("c5_conv").output.shape[1:] == (1, 1, 120)
    assert model.output_shape == (None, 10) and model.name == name


def test_lenet5_flavours_differ_in_activation_and_pooling():
    classic, modern = models.create_model("lenet5"), models.create_model("lenet5_relu")
    assert classic.get_layer("c1_conv").activation.__name__ == "tanh"
    assert isinstance(classic.get_layer("s2_pool"), keras.layers.AveragePooling2D)
    assert modern.get_layer("c3_conv").activation.__name__ == "relu"
    assert isinstance(modern.get_layer("s4_pool"), keras.layers.MaxPooling2D)
    assert classic.get_layer("predictions").activation.__name__ == "softmax"


def test_lenet5_options():
    model = models.create_model("lenet5_relu", batch_norm=True, dropout=0.25)
    names = [layer.name for layer in model.layers]
    assert {"c1_bn", "c1_act", "c3_bn", "c5_act", "f6_dropout"} <= set(names)
    assert model.get_layer("c1_conv").count_params() == 156
    headless = models.create_model("lenet5", include_top=False)
    assert headless.output_shape == (None, 1, 1, 120)
    small = models.create_model("lenet5", (8, 8, 1), padding="same")
    assert small.predict(np.zeros((2, 8, 8, 1)), verbose=0).shape == (2, 10)
    with pytest.raises(ValueError, match="too small"):
        models.create_model("lenet5", (8, 8, 1))
    with pytest.raises(ValueError, match="padding must be"):
        models.create_model("lenet5", padding="full")


def test_lenet5_outputs_are_probabilities():
    model = models.create_model("lenet5", (32, 32, 3), num_classes=7)
    probs = model.predict(np.random.default_rng(0).random((3, 32, 32, 3)), verbose=0)
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# -- training, saving, loading -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("runs") / "lenet"
    result = models.train(
        "lenet5_relu", "mnist5k", epochs=3, max_train=512, batch_size=64, out=out, verbose=False
    )
    return result, out


def test_training_lowers_the_loss(trained):
    result, _ = trained
    loss = result.history["loss"]
    assert len(loss) == 3 and loss[-1] < loss[0] * 0.8
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert 0.5 < result.test_accuracy <= 1.0  # 512 images, 3 epochs: far above chance (0.1)
    assert result.seconds > 0


def test_save_load_round_trip_is_bit_exact(trained):
    result, _ = trained
    assert result.path.suffix == ".keras" and result.path.is_file()
    loaded = models.load_model(result.path)
    x = models.load_dataset("mnist5k").x_test[:64]
    # Exact: the weights are copies, and the same graph on the same batch runs the same kernels.
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), result.model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == LENET_LAYERS
    assert not list(result.path.parent.glob(".*"))  # no temporary files left behind


def test_sidecar_describes_the_run(trained):
    result, out = trained
    meta = load_sidecar(result.path)
    assert meta == json.loads(out.with_suffix(".json").read_text())
    assert meta["architecture"] == "lenet5_relu" and meta["dataset"] == "mnist5k"
    assert "mnist_5k.csv.gz" in meta["dataset_source"]
    assert meta["epochs"] == 3 and meta["batch_size"] == 64
    assert meta["n_train"] + meta["n_val"] == 512
    assert meta["input_shape"] == [28, 28, 1] and meta["class_names"][7] == "7"
    assert meta["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert meta["history"]["loss"] == pytest.approx(result.history["loss"])
    assert {"keras", "tensorflow", "numpy", "python"} <= set(meta["versions"])
    assert load_sidecar(out.parent / "absent.keras") is None


def test_refuses_to_overwrite(trained):
    result, out = trained
    before = result.path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True") as info:
        models.train("lenet5", "digits", epochs=1, out=out, verbose=False)
    assert str(result.path) in str(info.value)
    assert result.path.read_bytes() == before
    with pytest.raises(FileExistsError):
        save_model(result.model, result.path)
    copy = save_model(result.model, out.parent / "copy")
    assert save_model(result.model, copy, overwrite=True) == copy


def test_train_with_augmentation_and_label_smoothing_on_digits():
    # 8x8 digits need padding="same" in C3 too, so the model is built explicitly
    model = models.create_model("lenet5", (8, 8, 1), padding="same")
    result = models.train(
        model,
        "digits",
        epochs=2,
        batch_size=32,
        augment=True,
        label_smoothing=0.1,
        learning_rate=3e-3,
        verbose=False,
    )
    assert result.path is None and result.test_accuracy > 0.3
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_train_argument_errors():
    with pytest.raises(ValueError, match="epochs"):
        models.train("lenet5", "digits", epochs=0)
    with pytest.raises(ValueError, match="augment"):
        models.train("lenet5", "digits", epochs=1, augment="rotate")
    with pytest.raises(ValueError, match="does not fit"):
        models.train(models.create_model("lenet5"), "digits", epochs=1, verbose=False)
    with pytest.raises(TypeError, match="Dataset or a name"):
        models.train("lenet5", np.zeros((2, 28, 28, 1)), epochs=1)


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        models.load_model(tmp_path / "missing.keras")
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"expected a '\.keras'"):
        models.load_model(tmp_path / "weights.npz")
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=r"not a valid \.keras archive") as info:
        models.load_model(tmp_path / "junk.keras")
    assert str(tmp_path / "junk.keras") in str(info.value)
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not a Keras model"):
        models.load_model(tmp_path / "other.keras")


def test_load_model_truncated(trained, tmp_path):
    result, _ = trained
    raw = result.path.read_bytes()
    (tmp_path / "cut.keras").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.keras"):
        models.load_model(tmp_path / "cut.keras")


def test_lambda_layer_needs_safe_mode_off(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    path = save_model(keras.Model(inputs, outputs), tmp_path / "lam")
    with pytest.raises(ValueError, match="safe_mode=False"):
        models.load_model(path)
    loaded = models.load_model(path, safe_mode=False)
    np.testing.assert_allclose(loaded.predict(np.ones((1, 4)), verbose=0), 2.0)


def test_augmented_batches_are_shifted_or_flipped_copies():
    from models.training import ShiftedBatches

    x = np.zeros((8, 24, 24, 1), np.float32)
    x[:, 10, 12, 0] = 1.0  # one lit pixel per image: its new place tells the shift
    y = np.arange(8)
    batches = ShiftedBatches(x, y, 8, shift=True, flip=False, seed=0)
    images, labels = batches[0]
    moves = set()
    for image in images:
        (r, c) = np.argwhere(image[..., 0] == 1.0)[0]
        assert abs(r - 10) <= 2 and abs(c - 12) <= 2 and image.sum() == 1.0  # 24 // 12 = 2
        moves.add((r - 10, c - 12))
    assert len(moves) > 1 and set(labels) == set(range(8))
    assert x[:, 10, 12, 0].sum() == 8  # the source images are untouched
    flipped, _ = ShiftedBatches(x, y, 8, shift=False, flip=True, seed=0)[0]
    columns = {int(np.argwhere(image[..., 0])[0][1]) for image in flipped}
    assert columns <= {12, 24 - 1 - 12}


def test_progress_bar_only_when_verbose(capfd):
    from models.training import TqdmProgress

    quiet = TqdmProgress(1, disable=True)
    quiet.set_params({"steps": 3})
    quiet.on_epoch_begin(0)
    quiet.on_train_batch_end(0, {"loss": 1.0})
    quiet.on_epoch_end(0, {"loss": 1.0})
    assert capfd.readouterr().err == ""
    model = models.create_model("lenet5", (8, 8, 1), padding="same")
    seen = []
    spy = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    models.train(model, "digits", epochs=2, max_train=200, verbose=True, callbacks=[spy])
    err = capfd.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "val_acc" in err and seen == [0, 1]
