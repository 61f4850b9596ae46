"""vizkit.export: files match the manifest, resume, no silent overwrite, atomic writes, escaping."""

import html.parser
import importlib
import os
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from report_helpers import all_links, load, recorded_files, tiny_model

import vizkit
from vizkit.core import files as _files
from vizkit.core.files import atomic_write, contained, safe_name
from vizkit.report import export
from vizkit.report.export import Writer
from vizkit.report.manifest import Manifest

FAST = ("filters", "feature_maps", "gradcam", "saliency", "occlusion")
TWO = ("filters", "feature_maps")  # 6 figures: 2 filter grids, 2 layers x 2 images


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return tiny_model()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)


def written_files(root: Path) -> set[str]:
    skip = {"manifest.json", "manifest.journal", "index.html"}
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - skip


def mtimes(root: Path) -> dict[str, int]:
    return {p: (root / p).stat().st_mtime_ns for p in written_files(root)}


def test_export_writes_every_figure_and_manifest_matches_disk(model, images, tmp_path):
    index = export(model, images, tmp_path, methods=FAST, progress=False)
    assert index == tmp_path.resolve() / "index.html"
    files = load(tmp_path)["files"]
    # filters: 2 conv layers; feature maps: 2 layers x 2 images; Grad-CAM: last conv x 2
    # images; saliency and occlusion: 2 images each (whole model).
    expected = {
        ("filters", "c1", None), ("filters", "c2", None),
        ("feature_maps", "c1", 0), ("feature_maps", "c1", 1),
        ("feature_maps", "c2", 0), ("feature_maps", "c2", 1),
        ("gradcam", "c2", 0), ("gradcam", "c2", 1),
        ("saliency", None, 0), ("saliency", None, 1),
        ("occlusion", None, 0), ("occlusion", None, 1),
    }  # fmt: skip
    assert {(f["method"], f["layer"], f["image"]) for f in files} == expected
    on_disk = written_files(tmp_path)
    assert recorded_files(load(tmp_path)) == on_disk
    page = index.read_text()
    links = all_links(tmp_path)  # the index and its pages
    for f in files:
        assert f["model"] == "tiny" and f["format"] == "png" and f["seconds"] >= 0
        assert f["parameters"]["weights_sha1"]
        png = cv2.imread(str(tmp_path / f["path"]))
        assert png is not None and png.shape[0] > 20
        assert f["path"] in links and f["thumbnail"] in links
    thumb = cv2.imread(str(tmp_path / files[0]["thumbnail"]))
    assert max(thumb.shape[:2]) <= 200
    saliency = [f for f in files if f["method"] == "saliency"]
    assert all(f["parameters"]["method"] == "vanilla" for f in saliency)
    # the diagnosis table is the one of vizkit.diagnose
    diag = load(tmp_path)["diagnosis"]["tiny"]
    # Exact: export makes the same diagnose call on the same images.
    assert diag == {**vizkit.diagnose(model, images).to_dict(), "summary": diag["summary"]}
    assert "Diagnosis" in page and '<td class="name">c1</td>' in page


def test_figures_show_the_method_result(model, images, tmp_path):
    """The saved figure is the plot of the method's own array (filters: compare pixels)."""
    export(model, images, tmp_path, methods=["filters"], layers="c1", progress=False,
           style="matplotlib")  # fmt: skip
    from vizkit.plot import plot_filters

    fig = plot_filters(vizkit.filters(model, "c1"), title="filters - tiny - c1")
    ref = tmp_path / "ref.png"
    fig.savefig(ref, format="png", dpi=100, bbox_inches="tight")
    a, b = cv2.imread(str(tmp_path / "tiny/c1/filters.png")), cv2.imread(str(ref))
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_every_method_in_the_table_exports(model, images, tmp_path, monkeypatch):
    from vizkit.registry import METHODS

    # The attention methods need MultiHeadAttention layers: on this CNN they draw nothing
    # (tests/test_registry.py exports them on a tiny ViT).
    available = [m for m in METHODS if _importable(m) and not m.startswith("attention")]
    assert {"filters", "feature_maps"} <= set(available)
    opts = {"maximize": {"steps": 3, "first": 2}, "deepdream": {"steps": 2, "octaves": 1}}
    export(
        model, images, tmp_path, methods=available, layers=["c2"], progress=False,
        method_options={k: v for k, v in opts.items() if k in available}, diagnose=False,
    )  # fmt: skip
    assert {f["method"] for f in load(tmp_path)["files"]} == set(available)


def _importable(method: str) -> bool:
    name = {"feature_maps": "feature_maps", "top_activating": "top_activating"}.get(method, method)
    try:
        getattr(vizkit, name)
    except (ImportError, AttributeError):
        return False
    return True


def test_resume_skips_recorded_files_and_redoes_missing_ones(model, images, tmp_path, monkeypatch):
    export(model, images, tmp_path, methods=TWO, progress=False)
    before = mtimes(tmp_path)
    calls = []
    real_run = Writer.run
    monkeypatch.setattr(
        Writer, "run", lambda self, g, jobs: calls.append(jobs) or real_run(self, g, jobs)
    )
    export(model, images, tmp_path, methods=TWO, progress=False)
    assert calls == [] and mtimes(tmp_path) == before

    (tmp_path / "tiny/c1/img001_feature_maps.png").unlink()
    export(model, images, tmp_path, methods=TWO, progress=False)
    assert [[j.image for j in jobs] for jobs in calls] == [[1]]  # only the missing figure
    after = mtimes(tmp_path)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"tiny/c1/img001_feature_maps.png", "thumbs/tiny/c1/img001_feature_maps.png"}


def test_resume_redraws_figures_a_power_failure_emptied_or_cut(model, images, tmp_path):
    # Figures are written atomically but not fsync'd one by one: after a power failure a file
    # the journal records may be empty or short. Resume compares the recorded size.
    export(model, images, tmp_path, methods=TWO, progress=False)
    sizes = {f["path"]: f["size"] for f in load(tmp_path)["files"]}
    assert all(s == (tmp_path / p).stat().st_size > 0 for p, s in sizes.items())
    emptied = tmp_path / "tiny/c1/img000_feature_maps.png"
    emptied.write_bytes(b"")
    cut = tmp_path / "tiny/c1/img001_feature_maps.png"
    cut.write_bytes(cut.read_bytes()[:20])
    before = mtimes(tmp_path)
    export(model, images, tmp_path, methods=TWO, progress=False)
    after = mtimes(tmp_path)
    changed = {p for p in after if after[p] != before.get(p) and not p.startswith("thumbs/")}
    assert changed == {"tiny/c1/img000_feature_maps.png", "tiny/c1/img001_feature_maps.png"}
    assert emptied.stat().st_size == sizes["tiny/c1/img000_feature_maps.png"]


def test_per_image_methods_run_in_chunks(model, images, tmp_path, monkeypatch):
    # the package re-exports the function under the module's name; take the module itself
    export_module = importlib.import_module("vizkit.report.export")
    calls = []
    real_run = Writer.run
    monkeypatch.setattr(export_module, "chunk_size", lambda models: 1)
    monkeypatch.setattr(
        Writer, "run", lambda self, g, jobs: calls.append(len(jobs)) or real_run(self, g, jobs)
    )
    export(model, images, tmp_path, methods=TWO, layers="c1", progress=False, diagnose=False)
    assert calls == [1, 1, 1]  # one filter grid, then the two images one at a time


def test_changed_parameters_are_not_skipped_and_not_overwritten_silently(model, images, tmp_path):
    export(model, images, tmp_path, methods=["saliency"], progress=False)
    with pytest.raises(FileExistsError, match=r"img000_saliency-vanilla\.png.*overwrite=True"):
        export(
            model, images, tmp_path, methods=["saliency"], progress=False,
            method_options={"saliency": {"method": "gradxinput"}},
        )  # fmt: skip
    export(
        model, images, tmp_path, methods=["saliency"], progress=False, overwrite=True,
        method_options={"saliency": {"method": "gradxinput"}},
    )  # fmt: skip
    params = {f["parameters"]["method"] for f in load(tmp_path)["files"]}
    assert params == {"gradxinput"}


def test_never_overwrites_a_foreign_file_without_the_flag(model, images, tmp_path):
    foreign = tmp_path / "tiny" / "c1" / "filters.png"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match=r"filters\.png.*not written by vizkit"):
        export(model, images, tmp_path, methods=["filters"], progress=False)
    assert foreign.read_bytes() == b"not ours"
    assert written_files(tmp_path) == {"tiny/c1/filters.png"}  # nothing else was started
    export(model, images, tmp_path, methods=["filters"], progress=False, overwrite=True)
    assert foreign.read_bytes().startswith(b"\x89PNG")


def test_resume_false_refuses_to_redo_without_overwrite(model, images, tmp_path):
    export(model, images, tmp_path, methods=["filters"], progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        export(model, images, tmp_path, methods=["filters"], progress=False, resume=False)
    export(
        model, images, tmp_path, methods=["filters"], progress=False, resume=False, overwrite=True
    )


def test_a_crash_mid_write_leaves_no_partial_file(model, images, tmp_path, monkeypatch):
    real_write, count = os.write, {"n": 0}

    def full_disk(fd, data):
        if bytes(data[:4]) == b"\x89PNG":  # a figure's or input picture's bytes
            count["n"] += 1
            if count["n"] == 5:  # a few files in: this one is half written when the disk fills
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(_files.os, "write", full_disk)
    with pytest.raises(OSError, match=r"cannot write .*No space left"):
        export(model, images, tmp_path, methods=TWO, progress=False, workers=0)
    monkeypatch.setattr(_files.os, "write", real_write)
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    for png in tmp_path.rglob("*.png"):  # every file left is complete, recorded or not
        assert cv2.imread(str(png)) is not None, png
    manifest = load(tmp_path)
    for f in manifest["files"]:
        assert cv2.imread(str(tmp_path / f["path"])) is not None
    done = mtimes(tmp_path)
    recorded = {f["path"] for f in manifest["files"]}
    export(model, images, tmp_path, methods=TWO, progress=False)  # resume finishes the job
    after = mtimes(tmp_path)
    assert all(after[p] == done[p] for p in recorded)
    assert len(load(tmp_path)["files"]) == 6


def test_interrupted_between_file_and_manifest_is_resumable(model, images, tmp_path, monkeypatch):
    """A file renamed into place but not yet recorded is ours (pending), not a foreign file."""
    records = {"n": 0}
    real_record = Manifest.record

    def interrupt(self, entry):
        records["n"] += 1
        if records["n"] == 2:  # the second figure's files are on disk, its record is not
            raise KeyboardInterrupt
        real_record(self, entry)

    monkeypatch.setattr(Manifest, "record", interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(model, images, tmp_path, methods=["filters", "feature_maps"], progress=False,
               workers=0)  # fmt: skip
    monkeypatch.setattr(Manifest, "record", real_record)
    state = load(tmp_path)
    assert len(state["files"]) == 1 and state["pending"]
    assert all((tmp_path / p).exists() for p in state["pending"] if "thumbs" not in p)
    export(model, images, tmp_path, methods=["filters", "feature_maps"], progress=False)
    final = load(tmp_path)
    assert final["pending"] == [] and len(final["files"]) == 6


def test_layer_and_model_names_are_escaped_in_html(images, tmp_path):
    # Keras accepts "<" and spaces in layer names (but no "/"); TensorFlow cannot trace such a
    # layer, so it is exported with the weight-only method; the model name carries a <script>.
    evil_layer = "<img src=x onerror=alert(1)>"
    evil_model = "<script>alert(1)</script>"
    m = tiny_model(conv2=evil_layer)
    index = export(
        {evil_model: m}, images, tmp_path, methods=["filters"], progress=False, diagnose=False
    )
    page = index.read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    tags = _Tags()
    tags.feed(page)
    assert "script" not in tags.names
    assert not [a for a in tags.attrs if a.startswith("on")]  # no event handlers at all
    assert all(not src.startswith(("http:", "https:", "//")) for src in tags.urls)
    assert {f["layer"] for f in load(tmp_path)["files"]} == {"c1", evil_layer}


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.names, self.attrs, self.urls = set(), set(), []

    def handle_starttag(self, tag, attrs):
        self.names.add(tag)
        for key, value in attrs:
            self.attrs.add(key)
            if key in ("src", "href"):
                self.urls.append(value)


@pytest.mark.parametrize(
    "name",
    ["../evil", "../../etc/passwd", "/abs/evil", "..\\evil", "C:\\evil", "a\x00b", "..", ".", "CON",
     "ünïcødé/ñame", "\u202eevil", "x" * 300],
)  # fmt: skip
def test_names_cannot_escape_the_output_folder(name, model, images, tmp_path):
    out = tmp_path / "out"
    before = set(tmp_path.iterdir())
    export({name: model}, images, out, methods=["filters"], progress=False, diagnose=False)
    assert set(tmp_path.iterdir()) == before | {out}
    for f in load(out)["files"]:
        path = (out / f["path"]).resolve()
        assert path.is_relative_to(out.resolve()) and path.is_file()
        assert f["model"] == name
    slug = safe_name(name)
    assert slug and len(slug) <= 60 and set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    assert not slug.startswith(".")


def test_safe_names_stay_unique():
    names = ["a/b", "a_b", "A_B", "a\\b", "a b", "conv1", "Conv1", "..", "."]
    slugs = [safe_name(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    assert safe_name("conv1") == "conv1"  # plain names are kept as they are
    with pytest.raises(ValueError, match="leave"):
        contained(Path("/tmp/x"), "..", "y")
    with pytest.raises(ValueError, match="relative"):
        contained(Path("/tmp/x"), "/etc")


def test_unwritable_output_folder_is_a_clear_error(model, images, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a folder below a regular file cannot exist, even for root
    with pytest.raises(OSError, match=r"cannot write to output folder .*file/out"):
        export(model, images, blocker / "out", methods=["filters"], progress=False)


def test_folder_turning_read_only_mid_export_keeps_earlier_files(
    model, images, tmp_path, monkeypatch
):
    real_replace, count = os.replace, {"n": 0}

    def read_only(src, dst):
        count["n"] += 1
        if count["n"] > 7:  # the first figure is recorded, the second fails
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(_files.os, "replace", read_only)
    with pytest.raises(OSError, match=r"cannot write '.*': Permission denied"):
        export(model, images, tmp_path, methods=TWO, progress=False)
    monkeypatch.setattr(_files.os, "replace", real_replace)
    files = load(tmp_path)["files"]
    assert files and all(cv2.imread(str(tmp_path / f["path"])) is not None for f in files)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_several_models_pdf_and_targets(model, images, tmp_path):
    b = tiny_model("b")
    index = export(
        [model, b], images, tmp_path, methods=["filters", "gradcam"], formats=("png", "pdf"),
        targets=[0, 2], progress=False,
    )  # fmt: skip
    files = load(tmp_path)["files"]
    assert {f["model"] for f in files} == {"tiny", "b"}
    pdfs = [f for f in files if f["format"] == "pdf"]
    assert len(pdfs) == len(files) / 2
    assert (tmp_path / pdfs[0]["path"]).read_bytes().startswith(b"%PDF")
    cams = sorted(
        (f["image"], f["parameters"]["targets"])
        for f in files
        if f["method"] == "gradcam" and f["model"] == "b" and f["format"] == "png"
    )
    assert cams == [(0, 0), (1, 2)]
    page = index.read_text()
    assert page.count('<section class="model"') == 2
    assert {f["path"] for f in pdfs} <= all_links(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"methods": ["nope"]}, ValueError, "methods must be"),
        ({"formats": ("gif",)}, ValueError, "formats must be"),
        ({"layers": ["nope"]}, ValueError, "unknown layer 'nope'; available layers"),
        ({"targets": [1, 2, 3]}, ValueError, "targets must be"),
        ({"method_options": {"nope": {}}}, ValueError, "unknown methods"),
        ({"overwrite": "yes"}, TypeError, "overwrite must be"),
    ],
)
def test_bad_arguments_fail_before_writing(kwargs, error, fragment, model, images, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(error, match=fragment):
        export(model, images, out, **kwargs)
    assert not written_files(out) if out.exists() else True


def test_models_without_conv_layers_get_only_whole_model_figures(images, tmp_path):
    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    mlp = keras.Model(inp, out, name="mlp")
    export(mlp, images, tmp_path, methods=FAST, progress=False, diagnose=False)
    assert {f["method"] for f in load(tmp_path)["files"]} == {"saliency", "occlusion"}


def test_a_foreign_manifest_is_not_overwritten(model, images, tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable vizkit manifest"):
        export(model, images, tmp_path, methods=["filters"], progress=False)
    assert (tmp_path / "manifest.json").read_text() == "{not json"


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    atomic_write(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_chunks_hold_more_small_images():
    export_module = importlib.import_module("vizkit.report.export")

    def net(shape):
        inputs = keras.Input(shape)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))

    digits, photos = net((28, 28, 1)), net((224, 224, 3))
    assert export_module.chunk_size([digits]) == 128  # as many values as 32 images of 112x112x3
    assert export_module.chunk_size([photos]) == export_module.CHUNK == 32
    assert export_module.chunk_size([digits, photos]) == 32  # the smallest over the models
    inputs = keras.Input((None, None, 3))  # any size: the default
    free = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    assert export_module.chunk_size([free]) == 32
