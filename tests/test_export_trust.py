"""vizkit.export(..., evaluate=...): the "Which map to trust" card in the manifest and index.html."""

import functools
import re

import cv2
import keras
import numpy as np
import pytest
from report_helpers import load, tiny_model

from vizkit.metrics import evaluate, report_card
from vizkit.metrics.names import FAILED, REFERENCE_ROW, cell
from vizkit.report import export
from vizkit.report.html import section_html, trust_section

CARD = {"methods": ["vanilla", "gradcam"], "metrics": ["deletion", "randomization"], "steps": 4}
EVIL = "<script>alert(1)</script>"
FIGURES = ("trust_curves.png", "trust_randomization.png", "trust_layers.png")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    # ">" is the one HTML character TensorFlow's scope names accept: the layer name reaches the
    # randomisation strip's labels, the model name (a dict key) the headings and the nav.
    return tiny_model(conv2="c2>x")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).random((6, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def card_report(model, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust")
    index = export({EVIL: model}, images, out, methods=["saliency"], evaluate=CARD,
                   diagnose=False, progress=False)  # fmt: skip
    return out, index


def test_card_in_manifest_equals_a_direct_evaluate(model, images, card_report):
    out, _ = card_report
    card = load(out)["trust"][EVIL]
    table = card["table"]
    assert table["methods"] == CARD["methods"] and table["metrics"] == CARD["metrics"]
    assert card["params"]["images"] == len(images) and card["params"]["steps"] == 4
    # The same seeded computation outside the export gives the same numbers.
    direct = evaluate(model, images, methods=CARD["methods"], metrics=CARD["metrics"], steps=4,
                      progress=False).to_dict()  # fmt: skip
    for method in CARD["methods"]:
        for metric in CARD["metrics"]:
            got, want = table["table"][method][metric], direct["table"][method][metric]
            np.testing.assert_allclose(got["per_image"], want["per_image"], rtol=1e-5, atol=1e-6)
    assert table["verdict"] == direct["verdict"]


def test_card_figures_are_written_with_thumbnails(card_report):
    out, _ = card_report
    figures = load(out)["trust"][EVIL]["figures"]
    slug = figures[0]["path"].split("/")[0]
    assert not slug.startswith("_") and "<" not in slug
    assert [f["path"] for f in figures] == [f"{slug}/_trust/{name}" for name in FIGURES]
    for figure in figures:
        assert figure["thumbnail"] == f"thumbs/{figure['path']}"
        big, small = (cv2.imread(str(out / figure[k])) for k in ("path", "thumbnail"))
        assert big is not None and small is not None and small.shape[1] <= big.shape[1]


def test_index_shows_the_card_escaped_with_table_legend_verdict_and_nav(model, images, card_report):
    out, index = card_report
    page = index.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    slug = load(out)["trust"][EVIL]["figures"][0]["path"].split("/")[0]
    nav = re.search(r'<nav class="toc">(.*?)</nav>', page).group(1)
    assert f'<a href="#trust-{slug}">Which map to trust (&lt;script&gt;' in nav
    start = page.index(f'<div id="trust-{slug}"><h3>Which map to trust</h3>')
    section = page[start : page.index("</div></div>", start)]
    # The table as the live table's Markdown prints it: same cells, same reference row.
    live = evaluate(model, images, methods=CARD["methods"], metrics=CARD["metrics"], steps=4,
                    progress=False)  # fmt: skip
    heads = re.findall(r"<th>(.*?)</th>", section)
    assert heads == ["method", "deletion ↓", "randomisation (Spearman) ↓"]
    rows = [
        re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr[^>]*>.*?</tr>", section)
    ]
    rows = [r for r in rows if r]
    markdown = [
        [c.strip().strip("*") for c in line.strip("|").split("|")]
        for line in live.to_markdown().splitlines()[2 : 3 + len(CARD["methods"])]
    ]
    assert rows == markdown
    assert rows[-1][0] == REFERENCE_ROW and '<tr class="muted">' in section
    assert rows[0][1] == cell(live.mean("vanilla", "deletion"), live.spread("vanilla", "deletion"))
    assert "Mean ± standard deviation (ddof=0) over 6 images" in section
    items = re.findall(r"<li[^>]*>(.*?)</li>", section)
    assert len(items) == len(live.verdict()) and items[0].startswith("Randomisation check")
    for name in FIGURES:
        assert f'src="thumbs/{slug}/_trust/{name}"' in section
    # The card comes after the per-image figures of the model, inside its section.
    assert page.index("<h3>Images (6)") < start < page.index("</section>", start)


def test_rerun_with_the_same_parameters_reuses_the_card(model, images, tmp_path, monkeypatch):
    calls = []

    @functools.wraps(evaluate)
    def counted(*args, **kwargs):
        calls.append(kwargs.get("metrics"))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(report_card, "evaluate", counted)
    kwargs = {"methods": [], "diagnose": False, "progress": False}
    options = {"methods": ["vanilla"], "metrics": ["deletion"], "steps": 3}
    export(model, images, tmp_path, evaluate=options, **kwargs)
    assert len(calls) == 1
    figure = tmp_path / "tiny" / "_trust" / "trust_curves.png"
    before = figure.stat().st_mtime_ns
    index = export(model, images, tmp_path, evaluate=options, **kwargs)
    assert len(calls) == 1 and figure.stat().st_mtime_ns == before
    assert "Which map to trust" in index.read_text(encoding="utf-8")
    # Other images, other parameters or other weights: computed again.
    export(model, images[:4], tmp_path, evaluate=options, **kwargs)
    export(model, images[:4], tmp_path, evaluate={**options, "steps": 5}, **kwargs)
    assert len(calls) == 3
    assert load(tmp_path)["trust"]["tiny"]["table"]["settings"]["steps"] == 5
    # A card without the curves drops the curves' files.
    export(model, images[:4], tmp_path, evaluate={"methods": ["vanilla"],
           "metrics": ["randomization"]}, **kwargs)  # fmt: skip
    assert not figure.exists() and (figure.parent / "trust_randomization.png").exists()
    assert not (tmp_path / "thumbs" / "tiny" / "_trust" / "trust_curves.png").exists()


def test_failed_sanity_checks_are_marked():
    table = {
        "methods": ["vanilla", "guided"],
        "metrics": ["deletion", "randomization"],
        "sanity_threshold": 0.5,
        "settings": {"images": 2, "steps": 10, "baseline": 0.0},
        "table": {
            "vanilla": {
                "deletion": {"mean": 0.2, "std": 0.01},
                "randomization": {"mean": 0.1, "std": 0.05},
            },
            "guided": {
                "deletion": {"mean": 0.3, "std": 0.02},
                "randomization": {"mean": 0.7, "std": 0.1},
            },
        },
        "reference": {"deletion": {"mean": 0.4, "per_image": [0.3, 0.5]}},
        "verdict": [
            f"{FAILED[0]} by guided (0.70): <the map ignores the weights>",
            "Trust vanilla",
        ],
    }
    page = section_html(trust_section({"table": table, "figures": []}), "trust-m", level=3)
    assert '<tr class="bad"><td class="name">guided</td>' in page
    assert '<tr><td class="name">vanilla</td>' in page
    assert '<li class="bad">Randomisation check: FAILED by guided (0.70): &lt;the map' in page
    assert "<li>Trust vanilla</li>" in page
    # The reference row's spread is the population standard deviation of its values.
    assert f"<td>{cell(0.4, 0.1)}</td>" in page
    failed = section_html(trust_section({"params": {}, "error": "<no scores>"}), level=3)
    assert "Evaluation failed: &lt;no scores&gt;" in failed


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        ("yes", TypeError, "evaluate must be True, False or a dict"),
        ({"methods": ["nope"]}, ValueError, "evaluate['methods'] must be a non-empty list"),
        ({"metrics": []}, ValueError, "evaluate['metrics'] must be a non-empty list"),
        ({"images": 3}, ValueError, "unknown keys ['images']"),
        ({"count": 0}, ValueError, "count"),
    ],
)
def test_bad_evaluate_fails_before_writing(value, error, fragment, model, images, tmp_path):
    with pytest.raises(error, match=re.escape(fragment)):
        export(model, images, tmp_path / "out", methods=["filters"], evaluate=value,
               progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_a_foreign_file_in_the_trust_folder_is_not_replaced(model, images, tmp_path):
    foreign = tmp_path / "tiny" / "_trust" / "trust_curves.png"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"mine")
    options = {"methods": ["vanilla"], "metrics": ["deletion"], "steps": 2}
    kwargs = {"methods": [], "diagnose": False, "progress": False, "evaluate": options}
    with pytest.raises(FileExistsError, match="overwrite"):
        export(model, images[:2], tmp_path, **kwargs)
    assert foreign.read_bytes() == b"mine"
    export(model, images[:2], tmp_path, overwrite=True, **kwargs)
    assert cv2.imread(str(foreign)) is not None


def test_a_run_stopped_after_writing_the_card_figures_is_resumed(model, images, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    # The card is saved with the manifest, after its figures: figures written by a run that
    # stopped in between are known to be the export's own (pending), not foreign files.
    import importlib

    export_module = importlib.import_module("vizkit.report.export")
    options = {"methods": ["vanilla"], "metrics": ["deletion"], "steps": 2}
    kwargs = {"methods": [], "diagnose": False, "progress": False, "evaluate": options}

    def stopped(*args, **kw):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "record_card", stopped)
        with pytest.raises(KeyboardInterrupt):
            export(model, images[:2], tmp_path, **kwargs)
    assert (tmp_path / "tiny" / "_trust" / "trust_curves.png").is_file()
    export(model, images[:2], tmp_path, **kwargs)  # no FileExistsError, no overwrite needed
    manifest = load(tmp_path)
    assert manifest["trust"]["tiny"]["table"]["methods"] == ["vanilla"]
    assert not any("_trust" in path for path in manifest.get("pending", []))


def test_the_card_uses_the_exports_preprocessing(model, images, tmp_path):
    options = {"methods": ["vanilla"], "metrics": ["deletion", "insertion"], "steps": 3}
    export(model, images[:3], tmp_path, methods=[], diagnose=False, progress=False,
           preprocess="tf", evaluate=options)  # fmt: skip
    card = load(tmp_path)["trust"]["tiny"]
    assert card["params"]["preprocess"] == "tf"
    direct = evaluate(model, images[:3], preprocess="tf", progress=False, **options).to_dict()
    plain = evaluate(model, images[:3], progress=False, **options).to_dict()
    got = card["table"]["table"]["vanilla"]["deletion"]["per_image"]
    np.testing.assert_allclose(got, direct["table"]["vanilla"]["deletion"]["per_image"], atol=1e-6)
    assert not np.allclose(got, plain["table"]["vanilla"]["deletion"]["per_image"], atol=1e-3)
    with pytest.raises(ValueError, match="unknown keys \\['preprocess'\\]"):
        export(model, images[:3], tmp_path / "x", methods=[], progress=False,
               evaluate={"preprocess": "tf"})  # fmt: skip
