"""The model atlas (``vizkit.atlas``): the numbers on its pages against independent NumPy
answers, the same site from the Ray engine, clear errors, the command line, escaping, and the
site in a real headless Chromium.

The model has hand-set weights on a grid of powers of two (kernels in quarters, inputs in
sixteenths), so every activation is exact in float32 whatever order a kernel adds in: the
NumPy forward pass below gives the very same numbers, and histograms can be compared bin for
bin.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import cv2
import keras
import numpy as np
import pytest

import vizkit
from vizkit.cli import main
from vizkit.engines import RayEngine
from vizkit.engines.reductions import Histogram
from vizkit.microscope import pictures, site

DEAD = 2  # the channel of c1 whose bias keeps it below zero on every input
N_IMAGES = 36
BATCH = 8  # several chunks, the last one short
PAGE = 3  # channel cards per page: c1 (4 channels) gets two pages, c2 (3) one


def exact_cnn() -> keras.Model:
    """conv c1 (4 channels, ReLU; channel 2 dead) -> 2x2 max pool -> conv c2 (3, same, ReLU)
    -> global average -> dense; weights are multiples of 1/4."""
    rng = np.random.default_rng(7)
    inp = keras.Input((10, 10, 1))
    c1 = keras.layers.Conv2D(4, 3, activation="relu", name="c1")
    c2 = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c2")
    h = c2(keras.layers.MaxPooling2D(2, name="pool")(c1(inp)))
    out = keras.layers.Dense(2, name="dense")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out, name="exact_cnn")
    k1 = rng.integers(-2, 3, (3, 3, 1, 4)) / 4
    b1 = np.array([0.0, -0.25, -100.0, 0.25])
    k2 = rng.integers(-2, 3, (3, 3, 4, 3)) / 4
    b2 = np.array([0.25, 0.0, -0.25])
    c1.set_weights([k1.astype(np.float32), b1.astype(np.float32)])
    c2.set_weights([k2.astype(np.float32), b2.astype(np.float32)])
    return model


def exact_images(n: int = N_IMAGES, seed: int = 3) -> np.ndarray:
    return (np.random.default_rng(seed).integers(0, 17, (n, 10, 10, 1)) / 16).astype(np.float32)


def numpy_activations(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """c1 and c2 outputs by a plain float64 NumPy forward pass (exact here)."""

    def conv(inp, kernel, bias):
        kh, kw = kernel.shape[:2]
        n, h, w, _ = inp.shape
        out = np.zeros((n, h - kh + 1, w - kw + 1, kernel.shape[-1]))
        for a in range(kh):
            for b in range(kw):
                out += np.tensordot(inp[:, a : a + out.shape[1], b : b + out.shape[2]],
                                    kernel[a, b], axes=([3], [0]))  # fmt: skip
        return np.maximum(out + bias, 0.0)

    k1, b1 = (w.astype(np.float64) for w in model.get_layer("c1").get_weights())
    k2, b2 = (w.astype(np.float64) for w in model.get_layer("c2").get_weights())
    a1 = conv(x.astype(np.float64), k1, b1)
    pooled = a1.reshape(len(x), 4, 2, 4, 2, 4).max(axis=(2, 4))
    a2 = conv(np.pad(pooled, ((0, 0), (1, 1), (1, 1), (0, 0))), k2, b2)
    return {"c1": a1, "c2": a2}


class Page(HTMLParser):
    """Links, images, element ids, table rows and cards of one page."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.images, self.ids, self.rows, self.cards = [], [], set(), [], []
        self._row, self._cell = None, None
        self.scripts = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "script":
            self.scripts += 1
        elif tag == "article":
            self.cards.append(a.get("id"))
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def read(path: Path) -> Page:
    return Page(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One atlas of the exact model, shared by the tests that read it."""
    model, x = exact_cnn(), exact_images()
    out = tmp_path_factory.mktemp("atlas") / "site"
    index = vizkit.atlas(model, x, out, batch_size=BATCH, maximize_steps=8, page_size=PAGE,
                         progress=False)  # fmt: skip
    return model, x, out, index


def manifest(out: Path) -> dict:
    return json.loads((out / site.MANIFEST).read_text("utf-8"))


# -- the numbers ----------------------------------------------------------------------------------
def test_landing_page_lists_every_conv_layer_with_its_dead_count(built):
    model, x, out, index = built
    assert index == out / "index.html"
    reference = numpy_activations(model, x)
    page = read(index)
    rows = {row[0]: row for row in page.rows}
    assert list(rows) == ["c1", "c2"]  # every conv layer with a 4-D output, in model order
    for name, act in reference.items():
        dead = [c for c in range(act.shape[-1]) if not act[..., c].any()]
        shape, channels, n_dead = rows[name][1:4]
        assert shape == "x".join(map(str, act.shape[1:])) and int(channels) == act.shape[-1]
        assert int(n_dead) == len(dead)
        assert manifest(out)["layers"][list(rows).index(name)]["dead"] == dead
    assert rows["c1"][3] == "1" and manifest(out)["layers"][0]["dead"] == [DEAD]
    assert "36 images (array)" in index.read_text("utf-8")


def test_each_layer_has_one_card_per_channel_across_its_pages_and_the_sparsity(built):
    model, x, out, _ = built
    reference = numpy_activations(model, x)
    for layer in manifest(out)["layers"]:
        act = reference[layer["name"]]
        channels = act.shape[-1]
        pages = [p["file"] for p in layer["pages"]]
        assert len(pages) == -(-channels // PAGE) and pages[0] == layer["page"]
        cards = []
        for number, rel in enumerate(pages):
            page = read(out / rel)
            first = number * PAGE
            assert page.cards == [f"c{c}" for c in range(first, min(first + PAGE, channels))]
            cards += page.cards
            assert page.scripts == 0
            # the channel index of every page reaches every channel, on whichever page it is
            jumps = [h for h in page.links if "#c" in h and not h.startswith("../")]
            index, own = jumps[:channels], jumps[channels:]  # then each card's link to itself
            assert own == [f"#{c}" for c in page.cards]
            for c, href in enumerate(index):
                target, anchor = href.split("#")
                assert (
                    anchor == f"c{c}"
                    and f"c{c}" in read(out / "layers" / (target or Path(rel).name)).ids
                )
            # the pager links the other pages of the layer (none for a one-page layer)
            others = {Path(p).name for p in pages} - {Path(rel).name}
            assert others <= set(page.links) and (len(pages) > 1) == (
                "channels: " in (out / rel).read_text()
            )
        assert cards == [f"c{c}" for c in range(channels)]
        zeros = (act == 0).reshape(-1, act.shape[-1]).mean(axis=0)
        np.testing.assert_allclose([u["sparsity"] for u in layer["units"]], zeros, rtol=1e-12)
        assert layer["sparsity"] == pytest.approx(zeros.mean(), rel=1e-12)
    assert [p["file"] for p in manifest(out)["layers"][0]["pages"]] == [
        "layers/c1.html",
        "layers/c1~p2.html",
    ]
    text = (out / "layers" / "c1.html").read_text("utf-8")
    assert text.count('class="badge dead"') == 1 and f'id="c{DEAD}" class="dead"' in text


def test_top_crops_are_those_of_top_activating(built):
    model, x, out, _ = built
    ranked = vizkit.top_activating(model, ["c1", "c2"], None, x, k=9, crops=True, batch_size=5)
    for layer in manifest(out)["layers"]:
        indices, scores, crops = ranked[layer["name"]]
        for unit in layer["units"]:
            c = unit["channel"]
            assert [t["index"] for t in unit["top"]] == indices[c].tolist()
            assert [t["id"] for t in unit["top"]] == [f"{i:03d}" for i in indices[c]]
            assert [t["score"] for t in unit["top"]] == scores[c].tolist()  # exact activations
            assert unit["boxes"] == crops[c].boxes.tolist()
            drawn = cv2.imread(str(out / unit["files"]["top"]))[..., ::-1]
            np.testing.assert_array_equal(drawn, pictures.crop_sheet(crops[c].images)[0])


def test_histograms_count_every_activation_as_numpy_does(built):
    model, x, out, _ = built
    reference = numpy_activations(model, x)
    for layer in manifest(out)["layers"]:
        act = reference[layer["name"]].reshape(-1, layer["channels"])
        for unit in layer["units"]:
            h = unit["histogram"]
            counts = np.asarray(h["counts"])
            assert counts.sum() == len(x) * np.prod(layer["shape"][:2]) == len(act)
            edges = np.ldexp(h["start"] + np.arange(len(counts) + 1.0), h["exponent"])
            values = act[:, unit["channel"]]
            assert edges[0] <= values.min() and values.max() < edges[-1]
            np.testing.assert_array_equal(counts, np.histogram(values, edges)[0])
            assert unit["low"] == values.min() and unit["high"] == values.max()


def test_histogram_merge_is_exact_in_any_order_and_the_graph_agrees():
    import tensorflow as tf

    from vizkit.microscope.compute import channel_histogram

    rng = np.random.default_rng(0)
    for trial in range(30):
        scale = 10.0 ** rng.uniform(-6, 6)
        x = (rng.standard_normal((200, 4)) * scale + rng.uniform(-2, 2) * scale).astype(np.float32)
        x[:, 0] = np.maximum(x[:, 0], 0)  # a ReLU channel
        x[:, 1] = 0.75  # a constant one
        x[[3, 50], 2] = [np.nan, np.inf]  # non-finite values are left out
        whole = Histogram.of_values(x)
        graph = Histogram.of_batch(
            {k: v.numpy() for k, v in channel_histogram(tf.constant(x)).items()}
        )
        cuts = sorted(rng.choice(np.arange(1, 200), 3, replace=False))
        parts = [Histogram.of_values(p) for p in np.split(x, cuts)]
        forward, backward = parts[0], parts[-1]
        for p in parts[1:]:
            forward = forward.merge(p)
        for p in parts[-2::-1]:
            backward = p.merge(backward)
        for h in (graph, forward, backward):
            for name in ("exponent", "start", "counts", "low", "high"):
                np.testing.assert_array_equal(getattr(h, name), getattr(whole, name), err_msg=name)
        for c in range(4):
            v = x[np.isfinite(x[:, c]), c]
            np.testing.assert_array_equal(np.histogram(v, whole.edges()[c])[0], whole.counts[c])
            used = len(whole.used(c)[0])  # the narrowest bins: the range spans 17 to 32 of 32
            assert used == 1 if c == 1 else 17 <= used <= whole.bins, (trial, c, used)


def detector_model() -> keras.Model:
    """conv "det" (3 channels, ReLU) on 12x12 gray images: channel 0 detects a bright plus
    sign (+1 on the plus, -1 on the corners of its 3x3 box, bias -2: plain noise in [0, 0.25]
    never reaches 0), channel 1 has zero weights and bias -0.5 (dead), channel 2 zero weights
    and bias 0.5 (constant 0.5)."""
    plus = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.float32)
    kernel = np.zeros((3, 3, 1, 3), np.float32)
    kernel[..., 0, 0] = 2 * plus - 1
    inp = keras.Input((12, 12, 1))
    det = keras.layers.Conv2D(3, 3, activation="relu", name="det")
    out = keras.layers.Dense(2)(keras.layers.GlobalMaxPooling2D()(det(inp)))
    model = keras.Model(inp, out, name="detector")
    det.set_weights([kernel, np.array([-2.0, -0.5, 0.5], np.float32)])
    return model


def test_known_answers_a_plus_detector_a_dead_and_a_constant_channel(tmp_path):
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 0.25, (30, 12, 12, 1)).astype(np.float32)
    with_plus = {3: (2, 5), 7: (8, 1), 11: (4, 4), 19: (0, 9), 25: (9, 8)}  # image: box corner
    for i, (r, c) in with_plus.items():
        x[i, r + 1, c : c + 3, 0] = 1.0
        x[i, r : r + 3, c + 1, 0] = 1.0
    out = tmp_path / "site"
    vizkit.atlas(detector_model(), x, out, maximize_steps=4, batch_size=7, progress=False)
    (layer,) = manifest(out)["layers"]
    assert (layer["dead"], layer["constant"], layer["constant_values"]) == ([1], [2], [0.5])
    plus, dead, constant = layer["units"]
    top = plus["top"]
    # the five images with a plus come first, their crops are the plus's 3x3 box ...
    assert {t["index"] for t in top[:5]} == set(with_plus)
    assert [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    for t, box in zip(top[:5], plus["boxes"][:5], strict=True):
        r, c = with_plus[t["index"]]
        corners = x[t["index"], [r, r, r + 2, r + 2], [c, c + 2, c, c + 2], 0].sum()
        assert box == [r, c, r + 3, c + 3]
        assert t["score"] == pytest.approx(5 - corners - 2, abs=1e-6)  # float32 sums of <= 9
    # ... then the others tie at 0 (ReLU) and the lower index wins
    assert [t["index"] for t in top[5:]] == [0, 1, 2, 4] and [t["score"] for t in top[5:]] == [
        0
    ] * 4
    # the histogram of the detector: all but the five plus locations are 0
    n = 30 * 10 * 10
    assert plus["histogram"]["counts"][0] == n - 5 and sum(plus["histogram"]["counts"]) == n
    assert plus["sparsity"] == pytest.approx((n - 5) / n, rel=1e-12)
    assert (dead["sparsity"], constant["sparsity"]) == (1.0, 0.0)
    assert dead["histogram"]["counts"] == [n] and constant["histogram"]["counts"] == [n]
    assert constant["low"] == constant["high"] == 0.5
    page = (out / layer["page"]).read_text("utf-8")
    assert 'id="c1" class="dead"' in page and 'id="c2" class="constant"' in page
    assert "constant 0.5<" in page
    rows = read(out / "index.html").rows
    assert rows[0][:5] == ["det", "10x10x3", "3", "1", "1"]


def test_preprocessing_runs_in_the_graph_and_is_recorded(tmp_path):
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 0.25, (6, 12, 12, 1)).astype(np.float32)
    x[2, 5, 4:7, 0] = 1.0  # a plus with its box corner at (4, 4)
    x[2, 4:7, 5, 0] = 1.0
    out = tmp_path / "site"
    vizkit.atlas(detector_model(), x, out, preprocess="scale255", maximize_steps=2,
                 progress=False)  # fmt: skip
    record = manifest(out)
    assert record["settings"]["preprocess"] == "scale255"
    best = record["layers"][0]["units"][0]["top"][0]
    corners = x[2, [4, 4, 6, 6], [4, 6, 4, 6], 0].sum()
    assert best["index"] == 2
    # the detector sees pixels x 255: weights +1 on the plus, -1 on the corners, bias -2
    assert best["score"] == pytest.approx(255 * (5 - corners) - 2, rel=1e-5)


# -- files ----------------------------------------------------------------------------------------
def test_folder_rules_as_export_never_replace_a_file_without_overwrite(tmp_path):
    model, x = exact_cnn(), exact_images(10)
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    vizkit.atlas(model, x, out, maximize_steps=2, progress=False)  # other files are fine
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "index.html").is_file()
    with pytest.raises(
        FileExistsError, match=r"index.html' already exists \(written by an earlier atlas\)"
    ):
        vizkit.atlas(model, x, out, maximize_steps=2, progress=False)
    # a file of the user's where the atlas would write one: refused before any work
    mine = tmp_path / "mine"
    (mine / "layers").mkdir(parents=True)
    (mine / "layers" / "c2.html").write_text("my page")
    with pytest.raises(FileExistsError, match=r"c2.html' already exists \(not written by vizkit\)"):
        vizkit.atlas(model, x, mine, maximize_steps=2, progress=False)
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == ["layers", "layers/c2.html"]
    # overwrite: the earlier atlas's files that are not written again go, the user's stay
    vizkit.atlas(model, x, out, layers=["c2"], maximize_steps=2, progress=False, overwrite=True)
    assert not (out / "layers" / "c1.html").exists() and not (out / "layers" / "c1").exists()
    assert (out / "notes.txt").read_text() == "mine"
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert written == set(manifest(out)["files"]) | {"notes.txt"}
    # the umask (022, set below) decides the modes, as for any file the user makes
    assert {(out / f).stat().st_mode & 0o777 for f in manifest(out)["files"]} == {0o644}


@pytest.fixture(autouse=True)
def _umask():
    import os

    before = os.umask(0o022)
    yield
    os.umask(before)


def test_names_from_the_model_and_the_data_are_escaped(built, tmp_path):
    model, x, out, _ = built
    evil = "<script>alert(1)</script>"
    # TensorFlow refuses to trace layers named with "<", so the page writer gets them directly.
    layer = replace(_layer(model, x, "c2"), path=evil)
    result = site.write_site(
        tmp_path / "evil",
        {**{k: v for k, v in manifest(out).items() if k not in ("layers", "files")}, "model": evil},
        [layer],
        site.plan_files([evil], [(evil, layer.channels)]),
    )
    for page in [result, *(tmp_path / "evil" / "layers").glob("*.html")]:
        text = page.read_text("utf-8")
        assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert read(page).scripts == 0
    slugs = [p.name for p in (tmp_path / "evil" / "layers").iterdir()]
    assert len(slugs) == 2 and all(re.fullmatch(r"[a-z0-9._-]+", s) for s in slugs), slugs
    # image ids come from file names, which may hold markup too
    folder = tmp_path / "images"
    folder.mkdir()
    name = "<img src=x onerror=alert(1)>"
    for i, image in enumerate((exact_images(4) * 255).astype(np.uint8)):
        cv2.imwrite(str(folder / f"{name}{i}.png"), image)
    index = vizkit.atlas(model, folder, tmp_path / "files", layers=["c1"], maximize_steps=2,
                         progress=False)  # fmt: skip
    text = (index.parent / "layers" / "c1.html").read_text("utf-8")
    assert name not in text and "&lt;img src=x onerror=alert(1)&gt;0" in text
    assert "4 images (folder)" in index.read_text("utf-8")


def _layer(model, x, path):
    """A LayerAtlas of ``path`` computed the way ``vizkit.atlas`` computes it."""
    from vizkit.engines import run
    from vizkit.engines.jobs import AtlasJob
    from vizkit.methods.top_activating import receptive_field
    from vizkit.microscope import LayerAtlas

    field = receptive_field(model, path)
    summary = run(AtlasJob((path,), (field,), 3), model, x)[0][path]
    shape = tuple(model.get_layer(path).output.shape[1:])
    findings = summary.stats.findings(0.0, 1e-6, 0.98)
    images = np.zeros((shape[-1], 10, 10, 1), np.float32)
    return LayerAtlas(path, shape, summary, findings, images, field)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_is_one_clear_line(tmp_path):
    model, x = exact_cnn(), exact_images(4)
    (tmp_path / "empty").mkdir()
    cases = [
        (dict(data=tmp_path / "empty"), ValueError, "holds no image files"),
        (dict(layers=["c9"]), ValueError, "unknown layer 'c9'"),
        (dict(layers=["dense"]), ValueError, "layers: 'dense' has output shape"),
        (dict(k=0), ValueError, "k must be a positive int"),
        (dict(engine="spark"), ValueError, "engine must be one of"),
        (dict(preprocess="caffee"), ValueError, "unknown preprocess preset 'caffee'"),
    ]
    for i, (change, kind, message) in enumerate(cases):
        args = {"data": x, "layers": None, **change}
        with pytest.raises(kind, match=message) as caught:
            vizkit.atlas(model, args.pop("data"), tmp_path / f"out{i}", progress=False, **args)
        assert "\n" not in str(caught.value)
        assert not (tmp_path / f"out{i}").exists()  # refused before anything is written
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster") as caught:
        vizkit.atlas(model, x, tmp_path / "ray", engine="ray", address=f"127.0.0.1:{port}",
                     progress=False)  # fmt: skip
    assert "\n" not in str(caught.value)


# -- the command line -----------------------------------------------------------------------------
def test_command_line(tmp_path, capsys):
    model = exact_cnn()
    model.save(tmp_path / "m.keras")
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate((exact_images(6) * 255).astype(np.uint8)):
        cv2.imwrite(str(folder / f"d{i}.png"), image)
    out = tmp_path / "site"
    argv = ["atlas", str(tmp_path / "m.keras"), "--folder", str(folder), "--out", str(out),
            "--layer", "c1", "-k", "4", "--steps", "2", "--batch-size", "4", "--quiet"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    layers = manifest(out)["layers"]
    assert [layer["name"] for layer in layers] == ["c1"] and len(layers[0]["units"][0]["top"]) == 4
    assert layers[0]["units"][0]["top"][0]["id"].startswith("d")
    assert main(argv) == 1  # the folder now holds an atlas
    assert "pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--page-size", "3"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert [p["file"] for p in manifest(out)["layers"][0]["pages"]] == [
        "layers/c1.html", "layers/c1~p2.html"]  # fmt: skip
    (tmp_path / "empty").mkdir()
    for extra, message in [
        (["--folder", str(tmp_path / "empty")], "holds no image files"),
        (["--dataset", "mnist", "--folder", str(folder)], "not --folder and --dataset"),
        (["--folder", str(folder), "--workers", "2"], "only apply to --engine ray"),
    ]:
        code = main(["atlas", str(tmp_path / "m.keras"), "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err
        assert code == 1 and message in err and err.count("\n") == 1, err


# -- the Ray engine -------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_writes_the_same_site_byte_for_byte(ray_local, built, tmp_path):
    model, x, out, _ = built
    remote = tmp_path / "ray"
    vizkit.atlas(model, x, remote, batch_size=BATCH, maximize_steps=8, page_size=PAGE,
                 progress=False, engine="ray", workers=2)  # fmt: skip
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(remote)) for p in remote.rglob("*") if p.is_file())
    assert len(files) == 2 + 3 + 3 * (4 + 3)  # index, manifest, 3 pages, 3 pictures a channel
    for rel in files:
        assert (out / rel).read_bytes() == (remote / rel).read_bytes(), rel
    # a model a worker cannot load is one line too
    engine = RayEngine(workers=1, model_source=str(tmp_path / "gone.keras"))
    with pytest.raises(RuntimeError, match="cannot load model 'gone' on a Ray worker") as caught:
        vizkit.atlas(model, x, tmp_path / "gone", engine=engine, progress=False)
    assert "\n" not in str(caught.value)


# -- in a browser ---------------------------------------------------------------------------------
from test_report_browser import driver  # noqa: E402,F401  (the headless-Chromium fixture)


@pytest.mark.browser
def test_every_link_and_image_resolves_in_chromium(built, driver):  # noqa: F811
    from selenium.webdriver.common.by import By

    _, _, out, index = built
    pages = [index, *sorted((out / "layers").glob("*.html"))]
    for page in pages:
        driver.get(page.as_uri())
        assert driver.execute_script("return document.scripts.length") == 0
        loaded = driver.execute_script(
            "return Promise.all(Array.from(document.images).map(i => { i.loading = 'eager'; "
            "return i.decode().then(() => i.naturalWidth, () => 0); }))"
        )
        assert loaded and all(w > 0 for w in loaded), page
        for a in driver.find_elements(By.TAG_NAME, "a"):
            target, _, anchor = a.get_attribute("href").partition("#")
            path = Path(unquote(urlparse(target).path))
            assert path.is_file(), (page, target)
            if anchor:
                assert f'id="{anchor}"' in path.read_text("utf-8"), (page, anchor)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    # navigate: index -> first layer -> next -> channel anchor -> back to the index
    driver.get(index.as_uri())
    driver.find_element(By.LINK_TEXT, "c1").click()
    assert driver.current_url.endswith("/layers/c1.html")
    driver.find_element(By.CSS_SELECTOR, "nav.layers a[rel=next]").click()
    assert driver.current_url.endswith("/layers/c2.html")
    driver.find_element(By.CSS_SELECTOR, 'nav.channels a[href="#c1"]').click()
    assert driver.current_url.endswith("#c1")
    assert driver.find_element(By.CSS_SELECTOR, "article:target").get_attribute("id") == "c1"
    driver.find_element(By.CSS_SELECTOR, "nav.layers a[rel=prev]").click()
    assert driver.current_url.endswith("/layers/c1.html")
    driver.find_element(By.LINK_TEXT, "all layers").click()
    assert driver.current_url.endswith("/index.html")
