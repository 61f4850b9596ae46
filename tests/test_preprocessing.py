"""Preprocessing presets against keras.applications' own preprocess_input, rescaling detection,
preset warnings, and class-name files."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import small_cnn

import vizkit
from vizkit.core.graph import Tap, predict_fn
from vizkit.preprocessing import (
    FAMILIES,
    PRESETS,
    check_preset,
    detect_rescaling,
    get_preset,
    label_of,
    likely_preset,
    load_labels,
)

ROOT = Path(__file__).resolve().parents[1]
APPS = keras.applications
# family -> its module's preprocess_input (run on 0..255 pixels, as Keras documents)
KERAS_PREPROCESS = {
    "resnet50": APPS.resnet50.preprocess_input,
    "vgg16": APPS.vgg16.preprocess_input,
    "vgg19": APPS.vgg19.preprocess_input,
    "resnet_v2": APPS.resnet_v2.preprocess_input,
    "mobilenet": APPS.mobilenet.preprocess_input,
    "mobilenet_v2": APPS.mobilenet_v2.preprocess_input,
    "xception": APPS.xception.preprocess_input,
    "inception_v3": APPS.inception_v3.preprocess_input,
    "inception_resnet_v2": APPS.inception_resnet_v2.preprocess_input,
    "nasnet": APPS.nasnet.preprocess_input,
    "densenet": APPS.densenet.preprocess_input,
    "efficientnet": APPS.efficientnet.preprocess_input,
    "efficientnet_v2": APPS.efficientnet_v2.preprocess_input,
    "convnext": APPS.convnext.preprocess_input,
    "mobilenet_v3": APPS.mobilenet_v3.preprocess_input,
}


@pytest.mark.parametrize("family", sorted(KERAS_PREPROCESS))
def test_presets_match_keras_applications_preprocess_input(family):
    rng = np.random.default_rng(7)
    x = rng.random((2, 5, 6, 3), dtype=np.float32)  # what vizkit feeds: [0, 1]
    expected = KERAS_PREPROCESS[family](x.astype(np.float64) * 255.0)
    preset = get_preset(family)
    # Pixels of order 255 minus means of order 100: float32 keeps ~1e-5 of that.
    np.testing.assert_allclose(preset(x), expected, rtol=1e-5, atol=1e-4)
    in_graph = tf.function(preset)(tf.constant(x)).numpy()  # traceable
    np.testing.assert_allclose(in_graph, expected, rtol=1e-5, atol=1e-4)
    low, high = preset.value_range
    assert low - 1e-4 <= float(np.min(expected)) and float(np.max(expected)) <= high + 1e-4


def test_every_family_names_a_preset_and_bad_names_list_them():
    assert set(FAMILIES.values()) <= set(PRESETS)
    assert get_preset("ResNet-50".replace("-", "")) is PRESETS["caffe"]
    assert get_preset(" MobileNet-V2 ") is PRESETS["tf"]
    with pytest.raises(ValueError, match=r"unknown preprocess preset 'yolo'; presets: none"):
        get_preset("yolo")
    with pytest.raises(ValueError, match="needs 3-channel"):
        PRESETS["caffe"](np.zeros((1, 4, 4, 1), np.float32))


def test_named_presets_work_as_preprocess_everywhere():
    model = small_cnn(input_shape=(12, 12, 3))
    x = np.random.default_rng(1).random((2, 12, 12, 3), dtype=np.float32)
    inside = predict_fn(model, Tap(preprocess="caffe"), x)(tf.constant(x)).numpy()
    outside = model(PRESETS["caffe"](x), training=False).numpy()
    np.testing.assert_allclose(inside, outside, rtol=1e-5, atol=1e-6)
    by_name = vizkit.saliency(model, x, target=0, preprocess="torch")
    by_preset = vizkit.saliency(model, x, target=0, preprocess=PRESETS["torch"])
    np.testing.assert_array_equal(by_name, by_preset)  # the same Tap, the same compiled call
    assert not np.allclose(by_name, vizkit.saliency(model, x, target=0))
    assert Tap(preprocess="none") == Tap() and Tap(preprocess="densenet") == Tap(
        preprocess=PRESETS["torch"]
    )


def _rescaling_model(*first):
    return keras.Sequential(
        [keras.Input((8, 8, 3)), *first, keras.layers.Conv2D(2, 3, name="conv")], name="custom"
    )


def test_detect_rescaling_reads_the_first_layers():
    found = detect_rescaling(_rescaling_model(keras.layers.Rescaling(1 / 255, name="rescale")))
    assert (found.layer, found.expects, found.preset) == ("rescale", (0.0, 255.0), "scale255")
    unit = detect_rescaling(_rescaling_model(keras.layers.Rescaling(2.0, offset=-1.0)))
    assert unit.preset == "none" and unit.expects == (0.0, 1.0)
    mean = [0.485 * 255, 0.456 * 255, 0.406 * 255]
    norm = keras.layers.Normalization(mean=mean, variance=[3000.0] * 3, name="norm")
    assert detect_rescaling(_rescaling_model(norm)).preset == "scale255"
    assert detect_rescaling(_rescaling_model()) is None
    # A rescaling layer after the first convolution is not the model's input scaling.
    late = _rescaling_model(keras.layers.Conv2D(3, 1), keras.layers.Rescaling(1 / 255))
    assert detect_rescaling(late) is None


@pytest.mark.slow
def test_keras_applications_models_are_recognised():
    mobile = APPS.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, include_top=False)
    assert detect_rescaling(mobile).preset == "scale255"  # its Rescaling(1/127.5, -1)
    assert likely_preset(mobile) == "scale255"
    keras.backend.clear_session()
    resnet = APPS.ResNet50(input_shape=(32, 32, 3), weights=None, include_top=False)
    assert detect_rescaling(resnet) is None and likely_preset(resnet) == "caffe"
    with pytest.warns(UserWarning, match=r"likely preset is 'caffe'"):
        check_preset(resnet, "none")


def test_check_preset_warns_with_the_likely_preset():
    model = _rescaling_model(keras.layers.Rescaling(1 / 255, name="rescale"))
    with pytest.warns(
        UserWarning, match=r"layer 'rescale' rescales .* likely preset is 'scale255'"
    ):
        assert check_preset(model, "tf") == "scale255"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_preset(model, "efficientnet") == "scale255"  # a family of that preset
        assert check_preset(small_cnn(), None, np.ones((1, 12, 12, 1), np.float32)) is None
    with pytest.warns(UserWarning, match=r"images reach 255: vizkit expects float images"):
        check_preset(small_cnn(), None, np.full((1, 12, 12, 1), 255.0, np.float32))


def test_imagenet_labels_are_built_in():
    names = load_labels("imagenet")
    assert len(names) == 1000 and len(set(names)) == 998  # "crane" and "maillot" twice
    assert names[0] == "tench" and names[967] == "espresso" and names[999] == "toilet tissue"
    assert label_of(names, 967) == "967 espresso" and label_of(names, 1000) == "1000"
    assert label_of(None, 3) == "3"


def test_labels_from_text_and_json_files(tmp_path):
    text = tmp_path / "classes.txt"
    text.write_text("cat\n dog \nbird\n\n")
    assert load_labels(text) == ["cat", "dog", "bird"]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(["a", "b"]))
    assert load_labels(str(listed)) == ["a", "b"]
    keras_form = tmp_path / "imagenet_class_index.json"
    keras_form.write_text(json.dumps({"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"]}))
    assert load_labels(keras_form) == ["tench", "goldfish"]
    assert load_labels(["x", "y"]) == ["x", "y"]
    gaps = tmp_path / "gaps.json"
    gaps.write_text(json.dumps({"0": "a", "2": "c"}))
    with pytest.raises(ValueError, match=r"keys must be 0\.\.1"):
        load_labels(gaps)
    blank = tmp_path / "blank.txt"
    blank.write_text("a\n\nc\n")
    with pytest.raises(ValueError, match="class 1 has an empty name"):
        load_labels(blank)
    with pytest.raises(FileNotFoundError, match="'imagenet' for the built-in"):
        load_labels(tmp_path / "missing.txt")


def test_preprocessing_imports_no_heavy_library():
    code = (
        "import sys, vizkit.preprocessing as p; p.get_preset('resnet50'); p.load_labels('imagenet');"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
