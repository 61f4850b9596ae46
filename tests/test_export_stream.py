"""vizkit.export on streamed input: folders of image files, generators of (x, y) batches and
tf.data datasets; bounded memory, captions with names and labels, progress with a rate."""

import importlib
import json
import weakref

import cv2
import keras
import numpy as np
import pytest
from report_helpers import all_links, digits, load, tiny_model

import vizkit
from vizkit.report import export

export_module = importlib.import_module("vizkit.report.export")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return tiny_model()


def test_folder_of_files_names_figures_after_the_files(model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee"):  # 16x16 colour files: resized and made gray for the model
        cv2.imwrite(str(folder / f"{name}.png"), rng.integers(0, 256, (16, 16, 3), np.uint8))
    out = tmp_path / "out"
    export(model, folder, out, methods=["saliency", "gradcam"], progress=False, diagnose=False,
           method_options={"saliency": {"method": "smoothgrad"}})  # fmt: skip
    manifest = load(out)
    paths = {f["path"] for f in manifest["files"]}
    assert paths == {
        "tiny/_model/astronaut_saliency-smoothgrad.png",
        "tiny/_model/coffee_saliency-smoothgrad.png",
        "tiny/c2/astronaut_gradcam.png",
        "tiny/c2/coffee_gradcam.png",
    }
    assert {f["image_id"] for f in manifest["files"]} == {"astronaut", "coffee"}
    assert set(manifest["images"]["tiny"]) == {"astronaut", "coffee"}
    inputs = [cv2.imread(str(out / i["path"]), cv2.IMREAD_UNCHANGED)
              for i in manifest["images"]["tiny"].values()]  # fmt: skip
    assert all(i.shape[:2] == (8, 8) for i in inputs)  # what the model saw
    page = (out / "index.html").read_text()
    assert "astronaut" in page and "coffee" in page


def test_generator_of_batches_with_labels_streams_once(model, tmp_path):
    x = digits(20)
    y = np.arange(20) % 3
    reads = []

    def batches():
        for lo in range(0, 20, 6):
            reads.append(lo)
            yield x[lo : lo + 6], y[lo : lo + 6]

    out = tmp_path / "out"
    export(model, batches(), out, methods=["feature_maps", "saliency", "top_activating"],
           layers=["c2"], labels=["zero", "one", "two"], progress=False)  # fmt: skip
    assert reads == [0, 6, 12, 18]  # read once, in order
    manifest = load(out)
    images = manifest["images"]["tiny"]
    assert len(images) == 20 and manifest["models"]["tiny"]["images"] == 20
    probabilities = model.predict(x, verbose=0)
    for image_id, info in images.items():
        i = info["index"]
        assert image_id == f"{i:03d}" and info["label"] == int(y[i])
        assert info["prediction"] == int(probabilities[i].argmax())
        assert info["score"] == pytest.approx(float(probabilities[i].max()), abs=1e-3)
    saliency = [f for f in manifest["files"] if f["method"] == "saliency"]
    assert len(saliency) == 20
    first = next(f for f in saliency if f["image"] == 4)
    names = ["zero", "one", "two"]
    pred = names[int(probabilities[4].argmax())]
    assert "true 1 one" in first["caption"]
    assert f"predicted {probabilities[4].argmax()} {pred}" in first["caption"]
    assert "explains" in first["caption"]
    # top-activating images and the diagnosis come from the images kept while streaming
    assert [f["method"] for f in manifest["files"]].count("top_activating") == 1
    assert manifest["diagnosis"]["tiny"]["n_images"] == 20


def test_tf_data_dataset(model, tmp_path):
    import tensorflow as tf

    x = digits(5)
    data = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 2, 0, 1])))
    out = tmp_path / "out"
    export(model, data, out, methods=["gradcam"], progress=False, diagnose=False)
    files = load(out)["files"]
    assert sorted(f["image"] for f in files) == [0, 1, 2, 3, 4]
    cams = vizkit.gradcam(model, x, layer="c2")
    # The overlay's value range in the caption notes is the Grad-CAM map's own range.
    for f in files:
        lo, hi = f["notes"]["range"]
        assert lo == pytest.approx(float(cams[f["image"]].min()), abs=1e-4)
        assert hi == pytest.approx(float(cams[f["image"]].max()), abs=1e-4)


def test_memory_does_not_grow_with_the_number_of_images(model, tmp_path, monkeypatch):
    """Batches handed over by a generator are released as the export goes: at any time only a
    bounded number of them are alive, however many the generator yields."""
    monkeypatch.setattr(export_module, "CHUNK", 4)
    monkeypatch.setattr(export_module, "SAMPLE", 8)  # images kept for the dataset methods
    alive = []
    peak = []

    class Tracked(np.ndarray):  # plain arrays take no weak references
        pass

    def batches():
        rng = np.random.default_rng(0)
        for _ in range(40):
            batch = rng.random((4, 8, 8, 1)).astype(np.float32).view(Tracked)
            alive.append(weakref.ref(batch))
            peak.append(sum(r() is not None for r in alive))
            yield batch

    export(model, batches(), tmp_path / "out", methods=["feature_maps"], layers=["c1"],
           progress=False, diagnose=False, workers=1)  # fmt: skip
    assert len(load(tmp_path / "out")["files"]) == 160
    # The two batches of the kept sample, the one being computed and the next one: never more.
    assert max(peak) <= 5, peak


def test_progress_shows_rate_and_time_left(model, tmp_path, capsys):
    export(model, digits(3), tmp_path / "out", methods=["saliency"], progress=True,
           diagnose=False)  # fmt: skip
    err = capsys.readouterr().err
    assert "3/3" in err and "fig/s" in err and "<" in err  # elapsed<remaining


def test_targets_for_a_stream_must_be_one_class(model, tmp_path):
    with pytest.raises(ValueError, match="targets must be None or one class index"):
        export(model, iter([digits(2)]), tmp_path / "o", methods=["saliency"], targets=[0, 1],
               progress=False)  # fmt: skip
    export(model, iter([digits(2)]), tmp_path / "o", methods=["saliency"], targets=2,
           progress=False, diagnose=False)  # fmt: skip
    files = load(tmp_path / "o")["files"]
    assert {f["parameters"]["targets"] for f in files} == {2}
    assert all("explains 2" in f["caption"] for f in files)


def test_every_link_of_a_streamed_report_resolves(model, tmp_path):
    out = tmp_path / "out"
    export(model, iter([digits(3), digits(2, seed=1)]), out, methods=["filters", "saliency"],
           progress=False, page_size=2)  # fmt: skip
    links = all_links(out)
    assert links and all((out / link).is_file() for link in links)
    assert json.loads((out / "manifest.json").read_text())["models"]["tiny"]["images"] == 5


def test_feature_maps_of_several_layers_share_one_pass_per_chunk(model, tmp_path):
    x = digits(3)
    export(model, x, tmp_path, methods=["feature_maps"], layers=["c1", "c2"], progress=False,
           diagnose=False)  # fmt: skip
    (tmp_path / "tiny/c1/img001_feature_maps.png").unlink()
    (tmp_path / "tiny/c2/img002_feature_maps.png").unlink()
    export(
        model,
        x,
        tmp_path,
        methods=["feature_maps"],
        layers=["c1", "c2"],
        progress=False,
        diagnose=False,
    )  # fmt: skip: rows 1 (c1) and 2 (c2), computed together
    maps = vizkit.feature_maps(model, x, layers=["c1", "c2"])
    for f in load(tmp_path)["files"]:
        m = maps[f["layer"]][f["image"]]
        lo, hi = f["notes"]["range"]
        assert lo == pytest.approx(float(m.min()), abs=1e-5)
        assert hi == pytest.approx(float(m.max()), abs=1e-5)
