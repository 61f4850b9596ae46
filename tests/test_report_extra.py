"""vizkit.report.add_figures: free-standing figures linked from index.html and manifest.json."""

import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from vizkit.report import add_figures


def _figure(value: float) -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().imshow(np.full((4, 4), value), vmin=0, vmax=1, cmap="gray")
    return fig


def _links(index) -> set[str]:
    text = index.read_text(encoding="utf-8")
    return set(re.findall(r'(?:href|src)="([^"#]+)"', text))


def test_figures_and_files_are_linked_and_recorded(tmp_path):
    png = tmp_path / "outside.png"
    src = add_figures(tmp_path / "a", {"First": [("white", _figure(1.0))]})
    add_figures(tmp_path / "b", {"x": [("y", _figure(0.0))]})
    png.write_bytes((tmp_path / "b" / _only_extra(tmp_path / "b")["path"]).read_bytes())
    index = add_figures(
        tmp_path / "a", {"Second <b>": [("copied <script>", png), ("black", _figure(0.0))]}
    )
    assert index == src
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert list(manifest["extras"]) == ["First", "Second <b>"]
    titles = [i["title"] for items in manifest["extras"].values() for i in items]
    assert titles == ["white", "copied <script>", "black"]
    links = _links(index)
    for items in manifest["extras"].values():
        for item in items:
            assert item["path"] in links and item["thumbnail"] in links
            assert (tmp_path / "a" / item["path"]).is_file()
            assert item["path"].startswith("_extra/")
    copied = manifest["extras"]["Second <b>"][0]["path"]
    assert (tmp_path / "a" / copied).read_bytes() == png.read_bytes()
    text = index.read_text(encoding="utf-8")
    assert "<script>" not in text and "copied &lt;script&gt;" in text
    assert "Second &lt;b&gt;" in text


def _only_extra(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    (items,) = manifest["extras"].values()
    return items[0]


def test_same_title_replaces_and_foreign_file_is_refused(tmp_path):
    add_figures(tmp_path, {"S": [("t", _figure(0.0))]})
    first = _only_extra(tmp_path)
    before = (tmp_path / first["path"]).read_bytes()
    add_figures(tmp_path, {"S": [("t", _figure(1.0))]})
    assert _only_extra(tmp_path) == first  # one entry, same file, new content
    assert (tmp_path / first["path"]).read_bytes() != before

    other = tmp_path / "other"
    add_figures(other, {"S2": [("t", _figure(0.5))]})
    target = _only_extra(other)["path"]
    (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / target).write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        add_figures(tmp_path, {"S2": [("t", _figure(0.5))]})
    assert (tmp_path / target).read_bytes() == b"mine"
    add_figures(tmp_path, {"S2": [("t", _figure(0.5))]}, overwrite=True)
    assert (tmp_path / target).read_bytes() != b"mine"


def test_export_keeps_extra_figures_in_its_index(tmp_path):
    import keras

    import vizkit

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()]
    )
    add_figures(tmp_path, {"Notes": [("n", _figure(0.2))]})
    index = vizkit.export(
        model, np.zeros((1, 8, 8, 1)), tmp_path, methods=["filters"], progress=False
    )
    links = _links(index)
    assert _only_extra(tmp_path)["path"] in links
    assert any(link.endswith("conv/filters.png") for link in links)


@pytest.mark.parametrize(
    ("figures", "error"),
    [
        ([("t", None)], TypeError),
        ({"": [("t", None)]}, ValueError),
        ({"s": "abc"}, TypeError),
        ({"s": [("t",)]}, TypeError),
        ({"s": [("t", 3)]}, TypeError),
        ({"s": [("t", "missing.png")]}, ValueError),
        ({"s": [("t", "notes.txt")]}, ValueError),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, figures, error):
    with pytest.raises(error):
        add_figures(tmp_path / "out", figures)
    assert not (tmp_path / "out" / "manifest.json").exists()
