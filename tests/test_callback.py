"""VisualizationCallback: per-epoch export folders and TensorBoard image summaries."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from vizkit import VisualizationCallback


def tiny_classifier():
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(3, 3, activation="relu", name="c1")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(2, activation="softmax")(h)
    model = keras.Model(inp, out, name="cb")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.random((16, 8, 8, 1)).astype(np.float32), rng.integers(0, 2, 16)


def test_two_epochs_write_two_folders_and_tensorboard_images(tmp_path):
    x, y = data()
    model = tiny_classifier()
    callback = VisualizationCallback(
        x[:2],
        tmp_path / "viz",
        every=1,
        methods=("filters", "gradcam"),
        tensorboard_dir=tmp_path / "tb",
    )
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in (tmp_path / "viz").iterdir()) == ["epoch_001", "epoch_002"]
    filters = []
    for epoch in ("epoch_001", "epoch_002"):
        manifest = json.loads((tmp_path / "viz" / epoch / "manifest.json").read_text())
        assert {(f["method"], f["image"]) for f in manifest["files"]} == {
            ("filters", None), ("gradcam", 0), ("gradcam", 1),
        }  # fmt: skip
        assert (tmp_path / "viz" / epoch / "index.html").exists()
        filters.append(manifest["files"][0]["parameters"]["weights_sha1"])
    assert filters[0] != filters[1]  # each epoch shows the weights of that epoch
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events
    tags = []
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        for value in event.summary.value:
            tags.append((value.tag, event.step))
            assert value.metadata.plugin_data.plugin_name == "images"
            width, height, png = value.tensor.string_val
            decoded = tf.io.decode_png(png).numpy()
            assert decoded.shape == (int(height), int(width), 3) and decoded.std() > 0
    assert sorted(tags) == sorted(
        (tag, step)
        for step in (1, 2)
        for tag in ("filters/c1", "gradcam/c1/image_0", "gradcam/c1/image_1")
    )


def test_every_n_epochs(tmp_path):
    x, y = data()
    model = tiny_classifier()
    callback = VisualizationCallback(x[:1], tmp_path, every=2, methods=["feature_maps"])
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_002"]
    assert callback.written == [tmp_path.resolve() / "epoch_002" / "index.html"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"), [({"every": 0}, "every"), ({"methods": ["nope"]}, "methods")]
)
def test_bad_arguments(kwargs, fragment, tmp_path):
    with pytest.raises(ValueError, match=fragment):
        VisualizationCallback(np.zeros((1, 8, 8, 1)), tmp_path, **kwargs)
