"""The report around the figures: pages, sections, names, captions, permissions, the journal."""

import json
import os
import re
import stat

import cv2
import keras
import numpy as np
import pytest
from report_helpers import all_links, digits, load, recorded_files, report_links, tiny_model

from vizkit.core.files import UniqueNames, safe_name
from vizkit.report import add_figures, add_section, export, render_method
from vizkit.report.manifest import JOURNAL_NAME, Entry, Manifest


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return tiny_model()


def test_pages_split_groups_and_navigate(model, tmp_path):
    export(model, digits(7), tmp_path, methods=["saliency", "occlusion"], page_size=3,
           progress=False, diagnose=False)  # fmt: skip
    manifest = load(tmp_path)
    pages = sorted(manifest["pages"])
    group = [p for p in pages if "_model__saliency" in p]
    assert group == [f"pages/tiny/_model__saliency-vanilla-{n}.html" for n in (1, 2, 3)]
    # every saliency figure on exactly one of its pages, in image order
    seen = []
    for page in group:
        links = report_links(tmp_path)[page]
        shown = sorted(k for k in links if k.startswith("tiny/_model/") and "saliency" in k)
        seen += shown
    expected = sorted(f["path"] for f in manifest["files"] if f["method"] == "saliency")
    assert sorted(seen) == expected and len(seen) == len(set(seen)) == 7
    # pager: page 2 links to 1 and 3 (prev/next) and back to the index
    text = (tmp_path / group[1]).read_text()
    assert 'href="_model__saliency-vanilla-1.html" rel="prev"' in text
    assert 'href="_model__saliency-vanilla-3.html" rel="next"' in text
    assert 'href="../../index.html"' in text
    # the per-image view: 2 columns a row, page_size // 2 = 1 image a page
    assert len([p for p in pages if "/images-" in p]) == 7
    links = all_links(tmp_path)
    assert all((tmp_path / link).is_file() for link in links)
    assert recorded_files(manifest) <= links | set(pages)


def test_report_shows_exactly_the_manifest_after_a_smaller_rerun(model, tmp_path):
    """#18: re-exporting 2 images into a report of 6 leaves no stale figure behind."""
    export(model, digits(6), tmp_path, methods=["saliency", "filters"], page_size=2,
           progress=False, diagnose=False)  # fmt: skip
    first = load(tmp_path)
    assert len([f for f in first["files"] if f["method"] == "saliency"]) == 6
    export(model, digits(2), tmp_path, methods=["saliency", "filters"], page_size=2,
           progress=False, diagnose=False)  # fmt: skip
    manifest = load(tmp_path)
    figures = {f["path"] for f in manifest["files"]}
    assert len([p for p in figures if "saliency" in p]) == 2
    shown = {
        link for link in all_links(tmp_path) if link.endswith(".png") and "thumbs/" not in link
    }
    shown = {link for link in shown if "/_input/" not in link}
    assert shown == figures
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk - {"index.html", "manifest.json"} == recorded_files(manifest)
    assert set(manifest["images"]["tiny"]) == {"000", "001"}
    assert manifest["models"]["tiny"]["images"] == 2


def test_other_methods_of_earlier_exports_stay(model, tmp_path):
    export(model, digits(2), tmp_path, methods=["filters"], progress=False, diagnose=False)
    export(model, digits(2), tmp_path, methods=["saliency"], progress=False, diagnose=False)
    assert {f["method"] for f in load(tmp_path)["files"]} == {"filters", "saliency"}


def test_names_carry_image_method_and_variant_hash_only_on_collision(model, tmp_path):
    """#18: astronaut_saliency-smoothgrad.png; a hash suffix only when two names collide."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a b", "a_b", "astronaut"):
        cv2.imwrite(str(folder / f"{name}.png"), rng.integers(0, 256, (8, 8), np.uint8))
    out = tmp_path / "out"
    export(model, folder, out, methods=["saliency"], progress=False, diagnose=False,
           method_options={"saliency": {"method": "smoothgrad"}})  # fmt: skip
    names = sorted(p.name for p in (out / "tiny" / "_model").iterdir())
    assert "astronaut_saliency-smoothgrad.png" in names
    assert "a_b_saliency-smoothgrad.png" in names  # "a b", first in file order
    hashed = [n for n in names if re.fullmatch(r"a_b-[0-9a-f]{8}_saliency-smoothgrad\.png", n)]
    assert len(hashed) == 1 and len(names) == 3  # "a_b" collides with "a b": hashed


def test_unique_names_hash_only_real_collisions():
    names = UniqueNames(["conv1", "Conv1", "block 1/conv", "thumbs", ""])
    assert names("conv1") == "conv1" and names("block 1/conv") == "block_1_conv"
    assert re.fullmatch(r"conv1-[0-9a-f]{8}", names("Conv1"))
    assert names("thumbs").startswith("thumbs-") and names("") == safe_name("")
    assert len({names(n) for n in ("conv1", "Conv1", "block 1/conv", "thumbs", "")}) == 5
    again = UniqueNames(["conv1", "Conv1"])
    assert again("Conv1") == names("Conv1")  # same names, same order: same slugs
    reserved = UniqueNames(reserved=["pages"])
    assert reserved("pages").startswith("pages-") and reserved("other") == "other"
    assert reserved.claim("old", "old-slug") and reserved("old") == "old-slug"
    assert not reserved.claim("new", "old-slug")


def test_captions_and_manifest_name_the_image_prediction_target_and_label(model, tmp_path):
    """#18: captions say which image, what was predicted (and how sure), what is explained,
    what the true label is; the manifest holds the same."""
    x = digits(3)
    y = np.array([2, 0, 1])
    export(model, [(x, y)], tmp_path, methods=["gradcam"], targets=1,
           labels=["cat", "dog", "owl"], progress=False, diagnose=False)  # fmt: skip
    manifest = load(tmp_path)
    p = model.predict(x, verbose=0)
    for f in manifest["files"]:
        i = f["image"]
        k = int(p[i].argmax())
        info = manifest["images"]["tiny"][f["image_id"]]
        assert info["prediction"] == k and info["label"] == int(y[i]) and info["target"] == 1
        caption = f["caption"]
        assert caption.startswith(f"image {i:03d}")
        assert f"predicted {k} {['cat', 'dog', 'owl'][k]} (p {p[i, k]:.3g})" in caption
        assert "explains 1 dog" in caption
        assert f"true {y[i]} {['cat', 'dog', 'owl'][y[i]]}" in caption
        assert f["title"] == "Grad-CAM · c2" and "jet colours" in caption
    text = "".join((tmp_path / page).read_text() for page in manifest["pages"])
    assert "explains 1 dog" in text and "true 2 owl" in text


def test_label_file_and_bad_labels(model, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\n")
    export(model, digits(1), tmp_path / "o", methods=["saliency"], labels=names,
           progress=False, diagnose=False)  # fmt: skip
    assert load(tmp_path / "o")["settings"]["class_names"] == ["zero", "one", "two"]
    with pytest.raises(FileNotFoundError, match="no labels file"):
        export(model, digits(1), tmp_path / "p", labels=tmp_path / "nope.txt")
    with pytest.raises(TypeError, match="labels must be"):
        export(model, digits(1), tmp_path / "p", labels=3)
    with pytest.raises(TypeError, match="preprocess must be"):
        export(model, digits(1), tmp_path / "p", preprocess=3)
    with pytest.raises(ValueError, match="style must be one of"):
        export(model, digits(1), tmp_path / "p", style="ascii")
    with pytest.raises(ValueError, match="page_size must be a positive int"):
        export(model, digits(1), tmp_path / "p", page_size=0)


def test_preprocess_callable_is_used_and_recorded(model, tmp_path):
    def halve(x):
        return x * 0.5

    export(model, digits(2), tmp_path, methods=["saliency"], preprocess=halve, progress=False,
           diagnose=False)  # fmt: skip
    manifest = load(tmp_path)
    assert manifest["models"]["tiny"]["preprocess"].endswith("halve")
    assert all(f["parameters"]["preprocess"].endswith("halve") for f in manifest["files"])
    p = model.predict(digits(2) * 0.5, verbose=0)
    predicted = [manifest["images"]["tiny"][i]["prediction"] for i in ("000", "001")]
    assert predicted == p.argmax(axis=1).tolist()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_every_file_kind_honours_the_umask(model, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        export(model, digits(2), tmp_path, methods=["filters", "saliency"], page_size=1,
               formats=("png", "svg"), progress=False)  # fmt: skip
        add_figures(tmp_path, {"More": [("copy", str(tmp_path / "tiny/c1/filters.png"))]})
    finally:
        os.umask(old)
    kinds = {"figure": "tiny/c1/filters.png", "svg": "tiny/c1/filters.svg",
             "thumbnail": "thumbs/tiny/c1/filters.png", "input": "tiny/_input/img000.png",
             "page": "pages/tiny/images-1.html", "index": "index.html",
             "manifest": "manifest.json"}  # fmt: skip
    kinds["extra"] = load(tmp_path)["extras"]["More"][0]["path"]
    for kind, rel in kinds.items():
        assert stat.S_IMODE((tmp_path / rel).stat().st_mode) == mode, kind
    modes = {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert modes == {mode}


def test_sections_are_escaped_replaced_by_key_and_shown_after_models(model, tmp_path):
    export(model, digits(1), tmp_path, methods=["filters"], progress=False, diagnose=False)
    add_section(tmp_path, "Which map to trust <b>", note="scores & ranks",
                columns=["method", "deletion"], rows=[["saliency", 0.25], ["<gradcam>", 0.5]],
                highlight=[1], figures=[("kernels", "tiny/c1/filters.png")],
                details={"summary": "per image", "rows": [["0", 1]], "text": "a < b"})  # fmt: skip
    text = (tmp_path / "index.html").read_text()
    assert (
        "Which map to trust &lt;b&gt;" in text
        and "<b>" not in text.split("<main>")[1].split("figcaption")[0]
    )
    assert '<tr class="bad"><td class="name">&lt;gradcam&gt;</td><td>0.5</td></tr>' in text
    assert "<details><summary>per image</summary>" in text and "a &lt; b" in text
    assert text.index('<section class="model"') < text.index('<section class="section"')
    add_section(tmp_path, "Replaced", key="Which map to trust <b>", rows=[["x"]])
    manifest = load(tmp_path)
    assert list(manifest["sections"]) == ["Which map to trust <b>"]
    assert "Replaced" in (tmp_path / "index.html").read_text()
    with pytest.raises(ValueError, match="no file"):
        add_section(tmp_path, "Bad", figures=[("x", "nope.png")])
    with pytest.raises(TypeError, match="rows must be a list"):
        add_section(tmp_path, "Bad", rows="abc")


def test_diagnosis_summary_puts_findings_first_and_folds_the_table(tmp_path):
    """#18: the diagnosis is a summary (layers with findings), the full table folded."""
    model = tiny_model("deadnet", dead=True)
    export(model, digits(8), tmp_path, methods=["saliency"], progress=False)
    text = (tmp_path / "index.html").read_text()
    summary, folded = (
        text.split("<details><summary>All ")[0],
        text.split("<details><summary>All ")[1],
    )
    assert "1 of" in summary and '<tr class="bad"><td class="name">c1</td>' in summary
    assert '<td class="name">c2</td>' not in summary  # no finding: only in the folded table
    assert '<td class="name">c2</td>' in folded
    assert text.index("<img") < text.index("Diagnosis: dead, constant")  # figures first


def test_render_method_returns_figures_that_encode(model):
    x = digits(2)
    out = render_method(model, x, "saliency", options={"method": "gradxinput"})
    assert [(r.layer, r.image, r.image_id) for r in out] == [(None, 0, "000"), (None, 1, "001")]
    first = out[0]
    _layer, _image, result, figure = first  # the 4-tuple of earlier versions
    assert result.shape == (8, 8) and "predicted" in first.caption
    png = cv2.imdecode(np.frombuffer(figure.encode("png"), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(png[..., ::-1], figure.picture.pixels)
    assert figure.encode("pdf").startswith(b"%PDF") and b"<svg" in figure.encode("svg")
    cams = render_method(model, x, "gradcam", layers=["c1", "c2"], targets=[0, 2])
    assert [(r.layer, r.image) for r in cams] == [("c1", 0), ("c1", 1), ("c2", 0), ("c2", 1)]
    assert "explains 2" in cams[1].caption


def test_journal_replays_after_a_kill_and_ignores_a_torn_line(tmp_path):
    manifest = Manifest(tmp_path)
    entry = Entry("m/l/a.png", "saliency", "m", None, 0, "png", {"x": 1}, 0.1, "thumbs/a.png",
                  image_id="000")  # fmt: skip
    manifest.mark_pending(["m/l/a.png", "thumbs/a.png"])
    manifest.record(entry)
    manifest.record_image("m", "000", {"index": 0, "path": "m/_input/img000.png"})
    manifest.close()
    with open(tmp_path / JOURNAL_NAME, "ab") as fh:
        fh.write(b'{"op":"file","entry":{"pa')  # a kill in the middle of a record
    again = Manifest.load(tmp_path)
    assert list(again.entries) == ["m/l/a.png"] and again.pending == set()
    assert again.by_key(("m", "saliency", None, "000", "png")) == entry
    assert again.images["m"]["000"]["index"] == 0
    again.drop(["m/l/a.png"])  # appending after a torn line starts a new line
    assert Manifest.load(tmp_path).entries == {}
    again.save()  # compaction: one manifest.json, no journal
    assert not (tmp_path / JOURNAL_NAME).exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["files"] == []


def test_preprocess_preset_by_name(tmp_path):
    model = tiny_model("pre")
    x = digits(2)
    export(model, x, tmp_path, methods=["saliency"], preprocess="tf", progress=False,
           diagnose=False)  # fmt: skip
    manifest = load(tmp_path)
    assert manifest["models"]["pre"]["preprocess"] == "tf"
    p = model.predict(x * 2.0 - 1.0, verbose=0)  # "tf": [0, 1] -> [-1, 1]
    infos = manifest["images"]["pre"]
    assert [infos[i]["prediction"] for i in ("000", "001")] == p.argmax(axis=1).tolist()
    with pytest.raises(ValueError, match="unknown preprocess preset 'nope'"):
        export(model, x, tmp_path / "o", preprocess="nope")


def test_command_line_export_of_a_folder(model, tmp_path, capsys):
    from vizkit import cli

    model.save(tmp_path / "tiny.keras")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("cat", "dog", "owl"):
        cv2.imwrite(str(folder / f"{name}.png"), np.full((12, 12), 60, np.uint8))
    (tmp_path / "names.txt").write_text("zero\none\ntwo\n")
    code = cli.main(["export", str(tmp_path / "tiny.keras"), "--folder", str(folder), "--methods",
                     "saliency,filters", "--out", str(tmp_path / "rep"), "--quiet", "--page-size",
                     "2", "--labels", str(tmp_path / "names.txt"), "--no-diagnose"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    manifest = load(tmp_path / "rep")
    saliency = sorted(f["path"] for f in manifest["files"] if f["method"] == "saliency")
    assert saliency == [f"tiny/_model/{n}_saliency-vanilla.png" for n in ("cat", "dog", "owl")]
    assert manifest["settings"]["class_names"] == ["zero", "one", "two"]
    assert len([p for p in manifest["pages"] if "saliency" in p]) == 2
