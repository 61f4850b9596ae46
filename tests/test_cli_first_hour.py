"""Issue #18, the command line as a new user meets it: defaults, names, advice, a quiet start.

Each test runs ``vizkit.cli.main`` (what the ``vizkit`` script calls) on tiny saved models, or
the real script in a subprocess where the process itself matters (imports, stderr noise).
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

import vizkit
from vizkit.cli import COMMANDS, build_parser, figure_names, main, read_image_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``mix.keras``: 8x8 gray -> c1 (6x6) -> mix (1x1 kernels) -> c2 (4x4) -> c3 (1x1 map) ->
    dense; ``nested.keras``: a 40-layer backbone used as a layer; image files."""
    folder = tmp_path_factory.mktemp("first_hour")
    keras.utils.set_random_seed(7)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(6, 1, name="mix")(h)
    h = keras.layers.Conv2D(3, 3, activation="relu", name="c2")(h)
    h = keras.layers.Conv2D(5, 4, activation="relu", name="c3")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(10, activation="softmax", name="out")(h)
    keras.Model(inp, out, name="mix_model").save(folder / "mix.keras")

    inner_in = keras.Input((8, 8, 1))
    g = inner_in
    for i in range(40):
        g = keras.layers.Conv2D(2, 1, name=f"block_{i}_project")(g)
    backbone = keras.Model(inner_in, g, name="backbone")
    outer_in = keras.Input((8, 8, 1))
    y = keras.layers.GlobalAveragePooling2D(name="gap")(backbone(outer_in))
    out = keras.layers.Dense(3, activation="softmax", name="head")(y)
    keras.Model(outer_in, out, name="nested").save(folder / "nested.keras")

    rng = np.random.default_rng(0)
    (folder / "one").mkdir()
    (folder / "two").mkdir()
    for name in ("astronaut.png", "one/x.png", "two/x.png"):
        cv2.imwrite(str(folder / name), (rng.random((16, 16)) * 255).astype(np.uint8))
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def model_of(files, name="mix.keras"):
    return keras.saving.load_model(files / name)


def script(*argv, env_extra=None, timeout=300):
    """The real ``vizkit`` entry point in a fresh process (this tree first on the path)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "vizkit", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# -- 1. Grad-CAM's default layer and the 1x1 warning ---------------------------------------------
def test_gradcam_default_skips_the_1x1_map_and_says_which_layer(files, tmp_path, capsys):
    code, _, err = run(
        capsys, "gradcam", files / "mix.keras", "--images", files / "astronaut.png",
        "--out", tmp_path, "--save-array",
    )  # fmt: skip
    assert code == 0, err
    assert err.strip().splitlines() == [
        "vizkit gradcam: 1 layer (the last layer whose map is larger than 1x1; --layer NAME or "
        "--layer all for others): c2"
    ]
    cam = np.load(tmp_path / "astronaut_gradcam_c2.npy")
    x = read_image_files([files / "astronaut.png"], size=(8, 8), channels=1)
    np.testing.assert_allclose(cam, vizkit.gradcam(model_of(files), x, layer="c2")[0], atol=1e-5)
    assert cam.std() > 0  # a real map, not one flat colour


def test_gradcam_on_a_1x1_layer_warns_in_one_line_with_no_log_noise(files, tmp_path):
    """The real script: exactly one stderr line, the warning; no TensorFlow/absl/CUDA lines."""
    done = script(
        "gradcam", files / "mix.keras", "--images", files / "astronaut.png", "--layer", "c3",
        "--out", tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vizkit gradcam: warning: layer 'c3' has a 1x1 map")
    assert done.stdout.split("\t")[0] == str(tmp_path / "astronaut_gradcam_c3.png")


# -- quiet by default ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_method_subcommand_prints_no_tensorflow_lines(files, tmp_path):
    """Feature maps of five nested layers: one compiled pass (no retracing warning) and no absl,
    oneDNN or CUDA lines; the figures hold the same maps as the library call."""
    layers = [f"backbone/block_{i}_project" for i in range(5)]
    done = script(
        "feature-maps", files / "nested.keras", "--images", files / "astronaut.png",
        *[a for layer in layers for a in ("--layer", layer)], "--out", tmp_path, "--save-array",
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    x = read_image_files([files / "astronaut.png"], size=(8, 8), channels=1)
    maps = vizkit.feature_maps(model_of(files, "nested.keras"), x, layers=layers)
    for layer in layers:
        name = f"astronaut_feature-maps_{layer.replace('/', '.')}.npy"
        np.testing.assert_allclose(np.load(tmp_path / name), maps[layer][0], atol=1e-6)


@pytest.mark.slow
def test_the_user_can_still_ask_for_tensorflow_logs(files, tmp_path):
    done = script(
        "filters", files / "mix.keras", "--layer", "c1", "--out", tmp_path,
        env_extra={"TF_CPP_MIN_LOG_LEVEL": "0"},
    )  # fmt: skip
    assert done.returncode == 0
    assert "absl" in done.stderr or "I0000" in done.stderr or "cuda" in done.stderr.lower()


# -- 2. representative default layers, --layer all, 1x1 kernels --------------------------------
def test_default_layers_are_named_and_all_asks_for_every_layer(files, tmp_path, capsys):
    code, out, err = run(
        capsys, "feature-maps", files / "mix.keras", "--images", files / "astronaut.png",
        "--out", tmp_path / "few",
    )  # fmt: skip
    assert code == 0, err
    assert err.count("\n") == 1 and err.strip().endswith("): mix, c2, c3")
    assert len(out.splitlines()) == 3
    code, out, err = run(
        capsys, "feature-maps", files / "mix.keras", "--images", files / "astronaut.png",
        "--layer", "all", "--out", tmp_path / "all",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        f"astronaut_feature-maps_{layer}.png" for layer in ("c1", "c2", "c3", "mix")
    ]


def test_1x1_kernels_are_drawn_as_a_channel_mixing_matrix(files, tmp_path, capsys):
    code, _, err = run(
        capsys, "filters", files / "mix.keras", "--layer", "mix", "--out", tmp_path / "mix.png",
        "--save-array",
    )  # fmt: skip
    assert code == 0, err
    kernel = model_of(files).get_layer("mix").get_weights()[0]  # (1, 1, 4, 6)
    np.testing.assert_array_equal(np.load(tmp_path / "mix.npy"), kernel[0, 0])

    from vizkit.methods.filters import channel_mixing, is_pointwise
    from vizkit.plot import plot_filters

    model = model_of(files)
    assert is_pointwise(model, "mix") and not is_pointwise(model, "c1")
    fig = plot_filters(channel_mixing(model, "mix"))
    heat = fig.axes[0].images[0]
    np.testing.assert_array_equal(heat.get_array(), kernel[0, 0])  # rows in, columns out
    low, high = heat.get_clim()
    assert low == -high == -np.abs(kernel).max()  # zero weight sits in the middle
    assert len(fig.axes) == 2  # the heat map and its colour bar
    with pytest.raises(ValueError, match="1x1"):
        channel_mixing(model, "c1")


# -- 3. --units are indices, --first N a count --------------------------------------------------
def test_units_are_indices_and_first_is_a_count(files, tmp_path, capsys):
    common = ["top-activating", files / "mix.keras", "--dataset", "digits", "--count", "40",
              "--layer", "c2", "-k", "3", "--save-array"]  # fmt: skip
    arrays = {}
    for key, extra in {
        "list": ["--units", "0", "1", "2"],
        "range": ["--units", "0-2"],
        "first": ["--first", "3"],
        "one": ["--units", "2"],
    }.items():
        code, _, err = run(capsys, *common, *extra, "--out", tmp_path / key)
        assert code == 0, err
        arrays[key] = np.load(tmp_path / key / "mix_top-activating_c2.npy")
    assert arrays["list"].shape[0] == 3
    np.testing.assert_array_equal(arrays["list"], arrays["range"])
    np.testing.assert_array_equal(arrays["list"], arrays["first"])
    import models

    x = models.load_dataset("digits").x_test[:40]
    indices, _ = vizkit.top_activating(model_of(files), "c2", 2, x, k=3)
    assert arrays["one"].shape[0] == 1  # unit 2 only, not units 0 and 1
    np.testing.assert_array_equal(arrays["one"][0, 0], indices)
    code, _, err = run(capsys, *common, "--units", "1", "--first", "2", "--out", tmp_path / "x")
    assert code == 1 and "either --units" in err


# -- 4. output names ----------------------------------------------------------------------------
def test_names_carry_source_method_variant_and_layer(files, tmp_path, capsys):
    for method in ("smoothgrad", "vanilla"):
        code, out, err = run(
            capsys, "saliency", files / "mix.keras", "--images", files / "astronaut.png",
            "--method", method, "--out", tmp_path,
        )  # fmt: skip
        assert code == 0, err
        assert out.split("\t")[0] == str(tmp_path / f"astronaut_saliency-{method}.png")
    code, out, err = run(
        capsys, "feature-maps", files / "mix.keras", "--images", files / "astronaut.png",
        "--layer", "c1", "--out", tmp_path,
    )  # fmt: skip
    assert code == 0 and out.strip() == str(tmp_path / "astronaut_feature-maps_c1.png")
    code, out, _ = run(capsys, "gradcam", files / "mix.keras", "--dataset", "digits", "--count",
                       "2", "--out", tmp_path)  # fmt: skip
    assert [line.split("\t")[0] for line in out.splitlines()] == [
        str(tmp_path / f"digits-test00{i}_gradcam_c2.png") for i in (0, 1)
    ]


def test_out_with_an_image_suffix_writes_that_file_or_refuses(files, tmp_path, capsys):
    argv = ["saliency", files / "mix.keras", "--images", files / "astronaut.png"]
    code, _, err = run(capsys, *argv, "--out", tmp_path / "err" / "s.jpg")
    assert code == 0, err
    path = tmp_path / "err" / "s.jpg"
    assert path.is_file() and path.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, not a folder
    code, _, err = run(capsys, *argv, "--out", tmp_path / "s.gif")
    assert (
        code == 1 and "cannot write a figure as .gif" in err and not (tmp_path / "s.gif").exists()
    )
    code, _, err = run(capsys, "feature-maps", files / "mix.keras", "--images",
                       files / "astronaut.png", "--out", tmp_path / "one.png")  # fmt: skip
    assert code == 1 and "names one file but this run makes 3 figures" in err
    assert not (tmp_path / "one.png").exists()


def test_nested_layers_read_plainly_and_hashes_only_on_a_collision(files, tmp_path, capsys):
    code, _, err = run(
        capsys, "feature-maps", files / "nested.keras", "--images", files / "one" / "x.png",
        files / "two" / "x.png", "--layer", "backbone/block_3_project", "--out", tmp_path,
    )  # fmt: skip
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.startswith("x_feature-maps_backbone.block_3_project-")
                                   for n in names)  # fmt: skip
    assert figure_names([("x", "m", "a/b"), ("y", "m", "a/b")]) == ["x_m_a.b", "y_m_a.b"]
    clash = figure_names([("x", "m"), ("x", "m"), ("z", "m")], keys=[("a/x",), ("b/x",), ("z",)])
    assert clash[2] == "z_m" and clash[0] != clash[1] and clash[0].startswith("x_m-")
    assert figure_names([("x", "m"), ("X", "m")])[0].startswith("x_m-")  # case-insensitive FS


# -- 7. no TensorFlow for listing, help and argument checks -------------------------------------
def test_listing_and_checks_do_not_import_tensorflow(files, tmp_path):
    probe = (
        "import sys\nfrom vizkit.cli import main\n"
        "codes = [main(['models', 'lenet*']), main(['gradcam', 'nothere.keras', '--images', "
        f"'a.png', '--out', {str(tmp_path)!r}]), main(['saliency', {str(files / 'mix.keras')!r}, "
        f"'--dataset', 'nope', '--out', {str(tmp_path)!r}])]\n"
        "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.stdout.splitlines() == ["lenet5", "lenet5_relu", "[0, 1, 1] False False"]
    assert "no model file at 'nothere.keras'" in done.stderr
    assert "unknown dataset 'nope'" in done.stderr


def test_static_zoo_index_equals_the_imported_registry():
    import models
    from models.names import zoo_names

    assert zoo_names() == models.list_models()
    assert zoo_names("res*") == models.list_models("res*") == ["resnet18", "resnet34"]


# -- 8. help text --------------------------------------------------------------------------------
def test_help_shows_each_default_once_and_only_used_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for name in COMMANDS:
        text = sub[name].format_help()
        assert "(default: None)" not in text, name
        for block in text.split("\n  -")[1:]:  # one block per option
            assert block.lower().count("default") <= 1, (name, block)
    filters_help = sub["filters"].format_help()
    assert "--images" not in filters_help and "--dataset" not in filters_help
    assert "--count" not in filters_help and "--preprocess" not in filters_help
    assert "(default: adam)" in sub["train"].format_help()
    assert sub["saliency"].format_help().count("vanilla)") == 1


# -- 9. defaults that mean something -------------------------------------------------------------
def test_top_activating_ranks_the_whole_test_split_by_default(files, tmp_path, capsys):
    import models

    x = models.load_dataset("digits").x_test
    code, _, err = run(
        capsys, "top-activating", files / "mix.keras", "--dataset", "digits", "--layer", "c2",
        "--units", "1", "-k", "4", "--out", tmp_path, "--save-array",
    )  # fmt: skip
    assert code == 0, err
    rows = np.load(tmp_path / "mix_top-activating_c2.npy")
    indices, _ = vizkit.top_activating(model_of(files), "c2", 1, x, k=4)
    np.testing.assert_array_equal(rows[0, 0], indices)
    assert len(x) > 8 and rows[0, 0].max() >= 8  # not just the first 8 images reordered


def test_deepdream_keeps_the_image_size_unless_size_is_given(files, tmp_path, capsys):
    argv = ["deepdream", files / "mix.keras", "--images", files / "astronaut.png", "--layer",
            "c2", "--steps", "2", "--octaves", "1", "--save-array"]  # fmt: skip
    code, _, err = run(capsys, *argv, "--out", tmp_path / "own")
    assert code == 0, err
    assert np.load(tmp_path / "own" / "astronaut_deepdream_c2.npy").shape == (16, 16, 1)
    code, _, err = run(capsys, *argv, "--size", "12", "--out", tmp_path / "sized")
    assert code == 0, err
    assert np.load(tmp_path / "sized" / "astronaut_deepdream_c2.npy").shape == (12, 12, 1)


# -- 10. advice that can be followed -------------------------------------------------------------
def test_a_layer_that_does_not_suit_says_why_and_which_do(files, tmp_path, capsys):
    code, _, err = run(capsys, "gradcam", files / "mix.keras", "--images",
                       files / "astronaut.png", "--layer", "out", "--out", tmp_path)  # fmt: skip
    assert code == 1 and err.count("\n") == 1
    assert "layer 'out' (output shape (None, 10)) does not suit gradcam" in err
    assert "layers that suit it: c1, mix, c2" in err and "pick one with --layer" not in err


def test_a_mistyped_nested_layer_suggests_the_closest_names(files, tmp_path, capsys):
    code, _, err = run(
        capsys, "feature-maps", files / "nested.keras", "--images", files / "astronaut.png",
        "--layer", "backbone/block_3_projet", "--out", tmp_path,
    )  # fmt: skip
    assert code == 1 and err.count("\n") == 1
    assert "did you mean 'backbone/block_3_project'" in err
    assert "has 43 layers" in err and "block_20_project" not in err  # a count, not a listing


@pytest.mark.slow
def test_train_builder_options_and_advice_that_names_them(tmp_path, capsys):
    argv = ["train", "lenet5", "--dataset", "digits", "--epochs", "1", "--max-train", "64",
            "--out", tmp_path / "m"]  # fmt: skip
    code, _, err = run(capsys, *argv)
    assert code == 1 and "use --option padding=same" in err
    code, _, err = run(capsys, *argv, "--option", "padding=same", "--option", "dropout=0.25")
    assert code == 0, err
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert model.get_layer("c3_conv").padding == "same"
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    code, _, err = run(capsys, *argv, "--option", "nonsense=1")
    assert code == 1 and "--option KEY=VALUE" in err


# -- --preprocess and --labels (vizkit.preprocessing, issue #16) -------------------------------
def test_preprocess_and_labels_reach_the_method_and_the_output(files, tmp_path, capsys):
    preprocessing = pytest.importorskip("vizkit.preprocessing")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class-{i}" for i in range(10)) + "\n")
    code, out, err = run(
        capsys, "gradcam", files / "mix.keras", "--images", files / "astronaut.png",
        "--preprocess", "tf", "--labels", labels, "--target", "3", "--out", tmp_path,
        "--save-array",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0].endswith("\tclass 3 (class-3)")
    x = read_image_files([files / "astronaut.png"], size=(8, 8), channels=1)
    expected = vizkit.gradcam(model_of(files), x, 3, layer="c2",
                              preprocess=preprocessing.get_preset("tf"))  # fmt: skip
    np.testing.assert_allclose(
        np.load(tmp_path / "astronaut_gradcam_c2.npy"), expected[0], atol=1e-5
    )
    code, _, err = run(
        capsys,
        "gradcam",
        files / "mix.keras",
        "--images",
        files / "astronaut.png",
        "--preprocess",
        "bogus",
        "--out",
        tmp_path,
    )
    assert code == 1 and "unknown preprocess preset 'bogus'" in err


def test_predicted_class_is_printed_with_the_dataset_names(files, tmp_path, capsys):
    code, out, err = run(capsys, "occlusion", files / "mix.keras", "--dataset", "digits",
                         "--count", "2", "--out", tmp_path)  # fmt: skip
    assert code == 0, err
    import models

    x = models.load_dataset("digits").x_test[:2]
    predicted = model_of(files).predict(x, verbose=0).argmax(axis=1)
    assert [line.split("\t")[1] for line in out.splitlines()] == [
        f"predicted class {c}" for c in predicted
    ]
