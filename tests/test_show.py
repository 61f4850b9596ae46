"""Notebook helpers: vizkit.show's comparison grid and Diagnosis' HTML table."""

from __future__ import annotations

import html.parser

import numpy as np
import pytest
from helpers import random_images, small_cnn

import vizkit
from vizkit.methods.diagnose import HTML_ROWS, Diagnosis, LayerReport


@pytest.fixture(scope="module")
def model():
    return small_cnn(input_shape=(12, 12, 1), num_classes=3)


def test_show_draws_images_by_methods_with_the_maps(model):
    images = random_images(2, (12, 12, 1), seed=4)
    fig = vizkit.show(model, images, methods=["vanilla", "gradcam"], target=[0, 2])
    assert len(fig.axes) == 2 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1:3] == ["vanilla", "gradcam"]
    probs = model(images).numpy()
    predicted = probs.argmax(axis=1)
    assert titles[0] == f"pred {predicted[0]} ({probs[0, predicted[0]]:.2f})\nexplained 0"
    assert titles[3].endswith("explained 2")
    # Each map cell shows the input and the method's own map for that image and target.
    expected = vizkit.explain(model, images, "gradcam", target=[0, 2])
    drawn = fig.axes[5].images[-1].get_array()
    np.testing.assert_allclose(np.asarray(drawn), expected[1], rtol=1e-6)
    assert len(fig.axes[5].images) == 2


def test_show_names_classes_and_refuses_unknown_methods(model):
    images = random_images(1, (12, 12, 1), seed=5)
    fig = vizkit.show(model, images, methods="occlusion", labels=["cat", "dog", "bird"])
    predicted = int(model(images).numpy().argmax())
    assert (
        fig.axes[0].get_title().startswith(f"pred {predicted} {['cat', 'dog', 'bird'][predicted]}")
    )
    with pytest.raises(ValueError, match="methods must be names from"):
        vizkit.show(model, images, methods=["lime"])
    with pytest.raises(ValueError, match="options given for methods not shown"):
        vizkit.show(model, images, methods=["vanilla"], options={"gradcam": {}})


class _Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.tags, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells.append(data)


def test_diagnosis_renders_as_an_escaped_html_table():
    reports = (
        LayerReport("conv<1>", (4, 4, 3), 3, (0, 1, 2), (), (), (), (), 1.0),
        LayerReport("dense", (5,), 5, (), (4,), (0.5,), (), (), 0.2),
    )
    diagnosis = Diagnosis("model & co", 10, reports)
    text = diagnosis._repr_html_()
    assert "<script" not in text and "conv<1>" not in text and "conv&lt;1&gt;" in text
    parser = _Cells()
    parser.feed(text)
    assert parser.cells[:7] == [
        "layer",
        "shape",
        "channels",
        "dead",
        "constant",
        "input-like",
        "zeros",
    ]
    # Counts in the table, as in summary(); the channels in the list of findings below it.
    assert parser.cells[7:14] == ["conv<1>", "4x4x3", "3", "3", "0", "0", "100.0%"]
    assert parser.cells[14:21] == ["dense", "5", "5", "0", "1", "0", "20.0%"]
    assert parser.tags.count("tr") == 3
    assert "<li>conv&lt;1&gt;: dead channels [0-2]</li>" in text
    assert "<li>dense: constant channels [4] (values 0.5)</li>" in text
    assert "dying ReLU" in text and "model &amp; co" in text and "<details>" not in text


def test_a_long_diagnosis_folds_its_table_under_the_layers_with_findings():
    reports = tuple(
        LayerReport(f"conv{i}", (4, 4, 2), 2, (1,) if i == 7 else (), (), (), (), (), 0.1)
        for i in range(HTML_ROWS + 1)
    )
    text = Diagnosis("deep", 3, reports)._repr_html_()
    shown, folded = text.split("<details>")
    parser = _Cells()
    parser.feed(shown)
    assert parser.cells[7:] == ["conv7", "4x4x2", "2", "1", "0", "0", "10.0%"]
    assert f"<summary>all {HTML_ROWS + 1} layers</summary>" in folded
    parser = _Cells()
    parser.feed(folded)
    assert parser.cells[7::7] == [f"conv{i}" for i in range(HTML_ROWS + 1)]
    # Without findings the folded table is all there is.
    clean = tuple(LayerReport(f"c{i}", (2, 2, 1), 1, (), (), (), (), (), 0.0) for i in range(40))
    text = Diagnosis("clean", 3, clean)._repr_html_()
    assert text.index("<details>") < text.index("<table>")
    assert "No dead, constant or input-like channels found." in text
