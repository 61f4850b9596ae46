"""The vizkit command line, run in-process through ``main([...])`` (plus one real subprocess)."""

import json
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

import vizkit
from vizkit.cli import COMMANDS, main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny 8x8 grayscale classifier saved as .keras, and two image files of other sizes."""
    folder = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(3, 3, activation="relu", name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(10, activation="softmax", name="out")(h)
    model = keras.Model(inp, out, name="tiny")
    model.save(folder / "tiny.keras")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.png"), (rng.random((16, 16)) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "b.png"), (rng.random((8, 8, 3)) * 255).astype(np.uint8))
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out
    code, out, _ = run(capsys, "gradcam", "--help")
    assert code == 0 and "--target" in out and "--unsafe" in out and "--save-array" in out


def test_real_console_script_help_is_fast_and_imports_no_tensorflow():
    exe = shutil.which("vizkit")
    cmd = [exe] if exe else [sys.executable, "-m", "vizkit.cli"]
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "export" in done.stdout and done.stderr == ""
    probe = (
        "import sys, vizkit.cli; vizkit.cli.build_parser(); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_filters_writes_figure_and_array(saved, tmp_path, capsys):
    code, out, err = run(
        capsys, "filters", saved / "tiny.keras", "--layer", "c1", "--out", tmp_path / "f.png",
        "--save-array",
    )  # fmt: skip
    assert code == 0, err
    assert out.split() == [str(tmp_path / "f.png"), str(tmp_path / "f.npy")]
    model = keras.saving.load_model(saved / "tiny.keras")
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), vizkit.filters(model, "c1"))
    assert cv2.imread(str(tmp_path / "f.png")) is not None
    # a second run refuses to replace the figure
    code, _, err = run(
        capsys, "filters", saved / "tiny.keras", "--layer", "c1", "--out", tmp_path / "f.png"
    )
    assert code == 1 and "already exists" in err and "--overwrite" in err


def test_feature_maps_from_mixed_image_files(saved, tmp_path, capsys):
    code, out, err = run(
        capsys, "feature-maps", saved / "tiny.keras", "--images", saved / "a.png", saved / "b.png",
        "--layer", "c2", "--out", tmp_path, "--save-array",
    )  # fmt: skip
    assert code == 0, err
    arrays = [np.load(tmp_path / f"{s}_feature-maps_c2.npy") for s in ("a", "b")]
    assert [a.shape for a in arrays] == [(4, 4, 3), (4, 4, 3)]
    assert len(out.split()) == 4


def test_gradcam_on_dataset_images_with_target(saved, tmp_path, capsys):
    code, _, err = run(
        capsys, "gradcam", saved / "tiny.keras", "--dataset", "digits", "--count", "2",
        "--target", "3", "--out", tmp_path, "--save-array",
    )  # fmt: skip
    assert code == 0, err
    # a named figure file would be refused: this run makes two figures
    code, _, err = run(
        capsys, "gradcam", saved / "tiny.keras", "--dataset", "digits", "--count", "2",
        "--out", tmp_path / "cam.png",
    )  # fmt: skip
    assert code == 1 and "names one file but this run makes 2 figures" in err
    import models

    model = keras.saving.load_model(saved / "tiny.keras")
    x = models.load_dataset("digits").x_test[:2]
    expected = vizkit.gradcam(model, x, 3)
    for i in (0, 1):
        array = np.load(tmp_path / f"digits-test00{i}_gradcam_c2.npy")
        np.testing.assert_allclose(array, expected[i], atol=1e-5)


def test_unknown_layer_is_one_line_without_traceback(saved, tmp_path, capsys):
    code, out, err = run(
        capsys, "feature-maps", saved / "tiny.keras", "--images", saved / "a.png", "--layer",
        "nope", "--out", tmp_path,
    )  # fmt: skip
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "unknown layer 'nope'" in err and "c1" in err
    code, _, err = run(
        capsys, "--debug", "feature-maps", saved / "tiny.keras", "--images", saved / "a.png",
        "--layer", "nope", "--out", tmp_path,
    )  # fmt: skip
    assert code == 1 and "Traceback" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["gradcam", "MODEL", "--images", "IMG"], "required: --out"),
        (["gradcam", "MODEL", "--count", "0", "--out", "x"], "positive integer"),
        (["saliency", "MODEL", "--method", "bogus", "--out", "x"], "invalid choice"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(argv, fragment, saved, capsys):
    argv = [
        str(saved / "tiny.keras") if a == "MODEL" else str(saved / "a.png") if a == "IMG" else a
        for a in argv
    ]
    code, _, err = run(capsys, *argv)
    assert code == 2 and fragment in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["gradcam", "missing.keras", "--images", "IMG", "--out", "OUT"], "no model file"),
        (["gradcam", "MODEL", "--out", "OUT"], "no images"),
        (["gradcam", "MODEL", "--images", "nothere.png", "--out", "OUT"], "no image file"),
        (["gradcam", "MODEL", "--images", "MODEL", "--out", "OUT"], "cannot read"),
        (["gradcam", "MODEL", "--dataset", "nope", "--out", "OUT"], "unknown dataset"),
    ],
)
def test_bad_inputs_are_one_line_errors(argv, fragment, saved, tmp_path, capsys):
    subst = {"MODEL": saved / "tiny.keras", "IMG": saved / "a.png", "OUT": tmp_path / "o.png"}
    code, _, err = run(capsys, *[subst.get(a, a) for a in argv])
    assert code == 1 and fragment in err and err.count("\n") == 1


def test_safe_mode_refuses_lambda_unless_unsafe(tmp_path, capsys):
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    h = keras.layers.Conv2D(2, 3, name="conv")(h)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(h))
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    argv = ["filters", tmp_path / "lam.keras", "--layer", "conv", "--out", tmp_path / "f.png"]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "safe mode" in err.lower() and err.count("\n") == 1
    code, _, err = run(capsys, *argv, "--unsafe")
    assert code == 0, err


def test_export_and_diagnose_commands(saved, tmp_path, capsys):
    code, out, err = run(
        capsys, "export", saved / "tiny.keras", "--dataset", "digits", "--count", "2", "--methods",
        "filters,gradcam", "--out", tmp_path / "rep", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    index = tmp_path / "rep" / "index.html"
    assert out.strip() == str(index.resolve()) and index.exists()
    files = json.loads((tmp_path / "rep" / "manifest.json").read_text())["files"]
    assert {f["method"] for f in files} == {"filters", "gradcam"}
    code, out, _ = run(capsys, "diagnose", saved / "tiny.keras", "--dataset", "digits", "--json")
    report = json.loads(out)
    assert code == 0 and [r["path"] for r in report["layers"]][:2] == ["c1", "c2"]
    code, out, _ = run(capsys, "diagnose", saved / "tiny.keras", "--images", saved / "a.png")
    assert code == 0 and "Diagnosis of model 'tiny'" in out
    # a folder is streamed: the same answer as its files read into memory
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((saved / "a.png").read_bytes())
    args = ("diagnose", saved / "tiny.keras", "--json")
    code, streamed, err = run(capsys, *args, "--folder", folder)
    assert code == 0, err
    _, listed, _ = run(capsys, *args, "--images", folder / "a.png", folder / "b.png")
    assert json.loads(streamed) == json.loads(listed)
    assert json.loads(streamed)["n_images"] == 2
    code, _, err = run(capsys, *args, "--folder", folder, "--dataset", "digits")
    assert code == 1 and "not --folder and --dataset" in err


def test_export_evaluate_adds_the_default_trust_card(saved, tmp_path, capsys):
    from vizkit.metrics.names import DEFAULT_METHODS, DEFAULT_METRICS

    code, _, err = run(
        capsys, "export", saved / "tiny.keras", "--dataset", "digits", "--count", "3", "--methods",
        "filters", "--no-diagnose", "--evaluate", "--out", tmp_path / "rep", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    card = json.loads((tmp_path / "rep" / "manifest.json").read_text())["trust"]["tiny"]
    assert card["table"]["methods"] == list(DEFAULT_METHODS)
    assert card["table"]["metrics"] == list(DEFAULT_METRICS)
    assert card["params"]["images"] == 3  # the export's images (fewer than the default 64)
    assert "<h3>Which map to trust</h3>" in (tmp_path / "rep" / "index.html").read_text()


def test_models_lists_registry(capsys):
    code, out, _ = run(capsys, "models", "lenet*")
    assert code == 0 and "lenet5" in out.split() and "vgg16" not in out
    code, _, err = run(capsys, "models", "zzz*")
    assert code == 1 and "no registered model" in err


@pytest.mark.slow
def test_train_saves_model_and_sidecar(tmp_path, capsys):
    code, out, err = run(
        capsys, "train", "lenet5", "--dataset", "mnist5k", "--epochs", "1", "--batch-size", "64",
        "--max-train", "256", "--out", tmp_path / "lenet",
    )  # fmt: skip
    assert code == 0, err
    assert "test accuracy:" in out
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert (tmp_path / "lenet.keras").exists() and (tmp_path / "lenet.json").exists()
    assert str(tmp_path / "lenet.keras") in out and str(tmp_path / "lenet.json") in out


def test_train_passes_the_recipe_options(tmp_path, capsys):
    code, _, err = run(
        capsys, "train", "lenet5", "--dataset", "mnist5k", "--epochs", "1", "--batch-size", "64",
        "--max-train", "128", "--out", tmp_path / "m", "--optimizer", "sgd",
        "--learning-rate", "0.05", "--schedule", "cosine", "--weight-decay", "1e-4",
        "--augment", "shift", "--label-smoothing", "0.1",
    )  # fmt: skip
    assert code == 0, err
    settings = json.loads((tmp_path / "m.json").read_text())
    assert settings["optimizer"] == "sgd" and settings["learning_rate"] == 0.05
    assert settings["schedule"] == "cosine" and settings["weight_decay"] == 1e-4
    assert settings["augment"] == "shift" and settings["label_smoothing"] == 0.1
    code, _, err = run(capsys, "train", "lenet5", "--dataset", "mnist5k", "--schedule", "step",
                       "--out", tmp_path / "x")  # fmt: skip
    assert code != 0 and "cosine" in err
