"""vizkit.export(..., engine="ray"): Ray workers render and write the figures of their chunks;
the report (files, manifest entries, pictures) is the local export's.

Uses the session's local Ray with two CPUs (the ``ray_local`` fixture in conftest.py).
"""

import importlib
import json
import re
import sys

import cv2
import keras
import numpy as np
import pytest
from report_helpers import digits, load, tiny_model

from vizkit import cli
from vizkit.engines import RayEngine
from vizkit.report import export
from vizkit.report.distributed import STAGING

METHODS = ["saliency", "gradcam", "feature_maps", "top_activating"]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SKIP = {"manifest.json", "manifest.journal"}
# The module (vizkit.report.export is also the name of the function).
export_module = importlib.import_module("vizkit.report.export")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return tiny_model(dead=True)


@pytest.fixture(scope="module")
def data():
    # (x, y) batches: the true classes travel with the chunks into the captions.
    x = digits(14, seed=3)
    y = np.random.default_rng(3).integers(0, 3, len(x))
    return [(x[:9], y[:9]), (x[9:], y[9:])]


def files(root) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name not in SKIP
    }


def same_text(a: str, b: str) -> bool:
    """Equal up to float32 rounding of the numbers in them (captions print computed values)."""
    na, nb = NUMBER.findall(a), NUMBER.findall(b)
    return NUMBER.sub("#", a) == NUMBER.sub("#", b) and np.allclose(
        [float(v) for v in na], [float(v) for v in nb], rtol=2e-3, atol=1e-6
    )


def assert_same_entries(local: dict, remote: dict) -> None:
    by_path = [{f["path"]: f for f in m["files"]} for m in (local, remote)]
    assert by_path[0].keys() == by_path[1].keys()
    for path in by_path[0]:
        entry, other = dict(by_path[0][path]), dict(by_path[1][path])
        assert same_text(entry.pop("caption", ""), other.pop("caption", "")), path
        notes, other_notes = entry.pop("notes", {}), other.pop("notes", {})
        assert same_text(json.dumps(notes, sort_keys=True), json.dumps(other_notes, sort_keys=True))
        entry.pop("seconds", None), other.pop("seconds", None)
        assert entry == other, path


def test_ray_export_equals_the_local_export(ray_local, model, data, tmp_path, monkeypatch):
    # Chunks of 4 images: 4 chunks over the two workers (one is 2 images short).
    monkeypatch.setattr(export_module, "CHUNK", 4)
    kwargs = {"methods": METHODS, "labels": ["zero", "one", "two"], "progress": False}
    export(model, data, tmp_path / "local", **kwargs)
    index = export(model, data, tmp_path / "ray", engine="ray", **kwargs)
    assert index == tmp_path / "ray" / "index.html"
    assert not (tmp_path / "ray" / STAGING).exists()
    local, remote = load(tmp_path / "local"), load(tmp_path / "ray")
    counts = {m: sum(f["method"] == m for f in local["files"]) for m in METHODS}
    # Per image: saliency, gradcam, the feature maps of c1 and c2; top-k of c1 and c2.
    assert counts == {"saliency": 14, "gradcam": 14, "feature_maps": 28, "top_activating": 2}
    assert_same_entries(local, remote)
    for key in ("models", "images", "pages", "settings"):
        assert local[key] == remote[key], key
    # The diagnosis ran on Ray too: the dead channel of c1 is found by both.
    assert local["diagnosis"]["tiny"]["layers"][0]["dead"] == [1]
    assert json.dumps(local["diagnosis"]) == json.dumps(remote["diagnosis"])
    # The same files; the pictures are equal (up to one grey level: float32 rounding).
    written = [files(tmp_path / name) for name in ("local", "ray")]
    assert written[0].keys() == written[1].keys()
    for rel, content in written[0].items():
        if rel.endswith(".png"):
            a, b = (
                cv2.imdecode(np.frombuffer(c, np.uint8), -1) for c in (content, written[1][rel])
            )
            assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1, rel
    strip = re.compile(r"updated [^<]*")
    pages = [strip.sub("", w["index.html"].decode()) for w in written]
    assert pages[0] == pages[1]
    # The true classes reached the workers with their chunks.
    y = np.concatenate([labels for _, labels in data])
    names = ["zero", "one", "two"]
    for f in remote["files"]:
        if f["method"] == "saliency":
            assert f" · true {y[f['image']]} {names[y[f['image']]]} · " in f["caption"]

    # A rerun on Ray finds everything recorded: nothing is written again.
    before = {p: (tmp_path / "ray" / p).stat().st_mtime_ns for p in written[1] if "thumbs" in p}
    export(model, data, tmp_path / "ray", engine="ray", **kwargs)
    after = {p: (tmp_path / "ray" / p).stat().st_mtime_ns for p in before}
    assert before == after
    assert_same_entries(local, load(tmp_path / "ray"))


def test_cli_export_on_ray(ray_local, model, tmp_path, capsys, monkeypatch):
    jobs = []
    real_run = RayEngine.run

    def counted(self, job, *args, **kwargs):
        jobs.append(type(job).__name__)
        return real_run(self, job, *args, **kwargs)

    monkeypatch.setattr(RayEngine, "run", counted)
    model.save(tmp_path / "tiny.keras")
    for i, image in enumerate(digits(3, seed=1)):
        cv2.imwrite(str(tmp_path / f"d{i}.png"), (image * 255).astype(np.uint8))
    argv = ["export", str(tmp_path / "tiny.keras"), "--images",
            *(str(tmp_path / f"d{i}.png") for i in range(3)), "--methods", "saliency",
            "--no-diagnose", "--quiet"]  # fmt: skip
    assert cli.main([*argv, "--out", str(tmp_path / "local")]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    capsys.readouterr()
    assert jobs == ["ExportJob"]
    assert_same_entries(load(tmp_path / "local"), load(tmp_path / "ray"))
    assert cli.main([*argv, "--out", str(tmp_path / "x"), "--address", "auto"]) == 1
    err = capsys.readouterr().err
    assert "only apply to engine='ray'" in err and err.count("\n") == 1


def test_without_ray_nothing_is_written(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ImportError, match=r'pip install "vizkit\[ray\]"'):
        export(model, digits(2), tmp_path / "out", engine="ray", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_worker_that_dies_mid_export_is_retried_and_the_report_is_whole(
    ray_local, model, tmp_path, monkeypatch
):
    import os

    import tensorflow as tf

    monkeypatch.setattr(export_module, "CHUNK", 4)
    x = digits(12, seed=5)
    x[x == 0.5] = 0.25
    x[9, 0, 0, 0] = 0.5  # the sentinel sits in chunk 3 of 3
    marker = str(tmp_path / "died")

    def die_once(batch):
        def check(values):
            if np.any(values.numpy()[:, 0, 0, 0] == 0.5) and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # the worker process dies, as on a lost node
            return values

        out = tf.py_function(check, [batch], tf.float32)
        out.set_shape(batch.shape)
        return out

    kwargs = {"methods": ["saliency"], "preprocess": die_once, "diagnose": False,
              "progress": False}  # fmt: skip
    export(model, x, tmp_path / "ray", engine="ray", workers=2, **kwargs)
    assert os.path.exists(marker), "the worker did not die: the test proves nothing"
    export(model, x, tmp_path / "local", **kwargs)
    local, remote = load(tmp_path / "local"), load(tmp_path / "ray")
    assert len(remote["files"]) == 12  # each image once, none lost, none twice
    assert_same_entries(local, remote)
    assert files(tmp_path / "local").keys() == files(tmp_path / "ray").keys()
    assert not (tmp_path / "ray" / STAGING).exists()
