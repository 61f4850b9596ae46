"""The report card: vizkit.evaluate's TrustTable, its verdict, figures, files and command."""

import json

import keras
import numpy as np
import pytest
from helpers import random_images, small_cnn
from matplotlib.figure import Figure

import vizkit
from vizkit.cli import main
from vizkit.metrics import (
    METRICS,
    RandomizationResult,
    TrustTable,
    deletion,
    evaluate,
    write_trust_figures,
    write_trust_report,
)
from vizkit.plot import plot_curves, plot_layer_similarity, plot_randomization

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def card():
    keras.utils.set_random_seed(0)
    model = small_cnn()
    images = random_images(4, (12, 12, 1), seed=3)
    table = evaluate(
        model,
        images,
        methods=("vanilla", "guided", "occlusion"),
        metrics=METRICS,
        steps=6,
        samples=16,
        method_options={"occlusion": {"patch": 4}},
        progress=False,
    )
    return model, images, table


def test_evaluate_fills_every_cell_with_the_metrics_own_values(card):
    model, images, table = card
    assert vizkit.evaluate is evaluate
    assert table.methods == ("vanilla", "guided", "occlusion") and table.metrics == METRICS
    for m in table.methods:
        for k in METRICS:
            v = table.values[m][k]
            assert v.shape == (4,) and v.dtype == np.float32, (m, k)
            assert table.mean(m, k) == pytest.approx(np.nanmean(v), abs=1e-6)
            assert table.spread(m, k) == pytest.approx(np.nanstd(v), abs=1e-6)
    # The cells are the public metrics on the same maps and targets.
    maps = vizkit.explain(model, images, "occlusion", patch=4)
    value, curve = deletion(model, images, maps, steps=6, return_curve=True)
    np.testing.assert_allclose(table.values["occlusion"]["deletion"], value, atol=1e-6)
    np.testing.assert_allclose(table.curves["occlusion"]["deletion"], curve, atol=1e-6)
    assert table.curves["vanilla"]["insertion"].shape == (4, 7)
    assert table.randomization["guided"].layers == ("dense", "conv2", "conv1")
    np.testing.assert_array_equal(
        table.values["guided"]["randomization"], table.randomization["guided"].final()
    )
    assert set(table.reference) == {"deletion", "insertion", "mufidelity"}
    assert table.image.shape == (12, 12, 1)


def test_table_outputs(card):
    _, _, table = card
    record = table.to_dict()
    again = json.loads(json.dumps(record, allow_nan=False))  # JSON-ready: no NaN left
    assert again["methods"] == list(table.methods)
    assert again["table"]["vanilla"]["deletion"]["per_image"] == pytest.approx(
        table.values["vanilla"]["deletion"].tolist()
    )
    assert len(again["curves"]["guided"]["deletion"]["mean"]) == 7
    assert again["spread"].startswith("standard deviation")
    text = table.to_markdown()
    assert "| method | deletion ↓ | insertion ↑ | muFidelity ↑ |" in text
    assert "| *random pixel order (reference)* |" in text and "**Verdict**" in text
    mean, spread = table.mean("guided", "insertion"), table.spread("guided", "insertion")
    assert f"{mean:.3g} ± {spread:.2g}" in text
    page = table._repr_html_()
    assert "<table>" in page and "<script" not in page
    assert [r["method"] for r in table.rows()] == list(table.methods)


def made_table(randomization, deletion_means, insertion_means):
    """A TrustTable with chosen per-image values (spread 0.1 around each mean)."""
    methods = tuple(randomization)
    values = {
        m: {
            "deletion": np.array([deletion_means[m] - 0.1, deletion_means[m] + 0.1], np.float32),
            "insertion": np.array([insertion_means[m]] * 2, np.float32),
            "randomization": np.array([randomization[m]] * 2, np.float32),
        }
        for m in methods
    }
    return TrustTable(methods, ("deletion", "insertion", "randomization"), values)


def test_verdict_names_who_fails_the_sanity_check_and_what_to_trust():
    table = made_table(
        {"vanilla": 0.1, "guided": 0.9, "gradcam": 0.2},
        {"vanilla": 0.3, "guided": 0.1, "gradcam": 0.2},
        {"vanilla": 0.5, "guided": 0.9, "gradcam": 0.7},
    )
    assert table.passes("randomization") == {"vanilla": True, "guided": False, "gradcam": True}
    assert table.best("deletion") == "guided" and table.best("insertion") == "guided"
    # guided is the most "faithful" but fails the sanity check: gradcam is the one to trust.
    assert table.recommended() == "gradcam"
    lines = table.verdict()
    assert any(line.startswith("Randomisation check: FAILED by guided (0.90)") for line in lines)
    assert any(
        line.startswith("Randomisation check: passed by vanilla (0.10), gradcam") for line in lines
    )
    assert lines[-1].startswith("Trust first: gradcam")
    assert table.spread("vanilla", "deletion") == pytest.approx(0.1, abs=1e-6)
    all_fail = made_table({"a": 0.8}, {"a": 0.1}, {"a": 0.9})
    assert all_fail.recommended() is None
    assert all_fail.verdict()[-1].startswith("No method passes every sanity check")
    with pytest.raises(ValueError, match="metric must be one of"):
        table.passes("deletion")


def test_plots(card):
    _, _, table = card
    fig = plot_curves(table)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("vanilla (") and labels[-1].startswith("random order")
    fig = plot_curves(table.curves, metrics=("insertion",))
    assert len(fig.axes) == 1 and fig.axes[0].get_legend() is not None
    strip = table.strip()
    assert list(strip) == list(table.methods)
    assert strip["vanilla"][0] == ["original", "dense", "conv2", "conv1"]
    fig = plot_randomization(strip, table.image)
    assert len(fig.axes) == 3 * 5 and sum(len(ax.images) for ax in fig.axes) == 15
    fig = plot_layer_similarity(table.randomization)
    assert len(fig.axes[0].lines) == 3 + 1  # one per method and the zero line
    with pytest.raises(ValueError, match="no \\['deletion'\\] curves"):
        plot_curves({"x": {"insertion": np.zeros((1, 3))}}, metrics=("deletion",))
    with pytest.raises(ValueError, match="one label per map"):
        plot_randomization({"m": (["a"], np.zeros((2, 4, 4)))})
    result = RandomizationResult("m", ("a",), True, {"ssim": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="has no 'spearman' similarity"):
        plot_layer_similarity({"m": result})


def test_trust_report_files(card, tmp_path):
    _, _, table = card
    figures = write_trust_figures(table, tmp_path)
    assert [p.name for _, p in figures] == [
        "trust_curves.png",
        "trust_randomization.png",
        "trust_layers.png",
    ]
    assert all(p.read_bytes().startswith(PNG) for _, p in figures)
    with pytest.raises(FileExistsError, match=r"already holds trust_curves\.png"):
        write_trust_report(table, tmp_path)
    index = write_trust_report(table, tmp_path, overwrite=True)
    assert json.loads((tmp_path / "trust.json").read_text())["metrics"] == list(METRICS)
    assert (tmp_path / "trust.md").read_text().startswith("# Which map to trust")
    page = index.read_text()
    assert 'src="trust_curves.png"' in page and "<script" not in page
    assert "Content-Security-Policy" in page


def test_html_escapes_what_comes_from_the_model(card):
    _, _, table = card
    from vizkit.metrics.report_files import trust_html

    evil = TrustTable(
        table.methods, table.metrics, table.values, settings={"model": "<img onerror=x>"}
    )
    page = trust_html(evil, [("<b>t</b>", "a b.png")])
    assert "<img onerror" not in page and "&lt;img onerror=x&gt;" in page
    assert "&lt;b&gt;t&lt;/b&gt;" in page and 'src="a%20b.png"' in page


def test_bad_report_card_arguments():
    model = small_cnn()
    x = random_images(2, (12, 12, 1))
    with pytest.raises(ValueError, match="unknown explanation method 'lrp'; known: vanilla"):
        evaluate(model, x, methods=["vanilla", "lrp"])
    with pytest.raises(ValueError, match=r"metrics must be a non-empty list of \('deletion'"):
        evaluate(model, x, metrics=["deletion", "accuracy"])
    with pytest.raises(ValueError, match="method_options names methods that are not evaluated"):
        evaluate(model, x, methods=["vanilla"], method_options={"occlusion": {}})
    with pytest.raises(ValueError, match=r"strip_image must be in \[0, 2\), got 3"):
        evaluate(model, x, methods=["vanilla"], strip_image=3)
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        evaluate(model, x, methods=["vanilla"], steps=0)
    with pytest.raises(ValueError, match="baseline must be a number, 'blur'"):
        evaluate(model, x, methods=["vanilla"], baseline=np.zeros((5, 5)))


@pytest.mark.slow
def test_evaluate_command(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    keras.Model(inp, keras.layers.Dense(10, activation="softmax")(h)).save(tmp_path / "m.keras")
    argv = [
        "evaluate", tmp_path / "m.keras", "--dataset", "digits", "--count", "3",
        "--methods", "vanilla,gradcam", "--metrics", "deletion,randomization",
        "--steps", "4", "--baseline", "blur", "--out", tmp_path / "out", "--quiet",
    ]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "| vanilla |" in out and str(tmp_path / "out" / "index.html") in out
    assert (
        json.loads((tmp_path / "out" / "trust.json").read_text())["settings"]["baseline"] == "blur"
    )
    assert main([str(a) for a in argv]) == 1  # refuses to replace without --overwrite
    assert "pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert main([str(a) for a in [*argv[:-1], "--baseline", "grey", "--quiet"]]) == 1
    assert "--baseline must be a number or 'blur', got 'grey'" in capsys.readouterr().err
    base = argv[:-2]  # without the output folder and --quiet
    assert main([str(a) for a in [*base, tmp_path / "pre", "--preprocess", "tf", "--quiet"]]) == 0
    settings = json.loads((tmp_path / "pre" / "trust.json").read_text())["settings"]
    assert settings["method_options"]["vanilla"]["preprocess"] == "tf"
    capsys.readouterr()
    assert main([str(a) for a in [*base, tmp_path / "x", "--preprocess", "tff"]]) == 1
    assert "unknown preprocess preset 'tff'" in capsys.readouterr().err


def test_a_sane_method_no_better_than_chance_is_not_recommended():
    table = made_table(
        {"vanilla": 0.1, "gradcam": 0.2},
        {"vanilla": 0.3, "gradcam": 0.6},
        {"vanilla": 0.7, "gradcam": 0.4},
    )
    table.reference = {
        "deletion": np.array([0.5, 0.5], np.float32),
        "insertion": np.array([0.5, 0.5], np.float32),
    }
    assert table.no_better_than_chance("gradcam") == ["deletion", "insertion"]
    assert table.no_better_than_chance("vanilla") == []
    assert table.recommended() == "vanilla"
    table.values["vanilla"]["randomization"][:] = 0.9  # now vanilla fails the sanity check
    assert table.recommended() is None
    assert table.verdict()[-1] == (
        "No method both passes every sanity check computed and beats a random pixel order on "
        "deletion, insertion (gradcam pass the checks but are no more faithful than chance): "
        "trust none of these maps for this model."
    )


def _cnn_after(first: keras.layers.Layer) -> keras.Model:
    """:func:`small_cnn`'s layers behind ``first`` (same layer positions for either first)."""
    inp = keras.Input((12, 12, 1))
    h = first(inp)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(h)
    h = keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="dense")(h))


def test_evaluate_with_preprocess_equals_the_model_with_it_built_in():
    # The "tf" preset ([-1, 1]) in the graph vs a Rescaling(2, offset=-1) layer in the model: the
    # same card, whatever the metric (perturbed copies and noise stay in image space in both).
    keras.utils.set_random_seed(8)
    plain = _cnn_after(keras.layers.Identity(name="pre"))
    built_in = _cnn_after(keras.layers.Rescaling(2.0, offset=-1.0, name="pre"))
    built_in.set_weights(plain.get_weights())  # built_in(x) == plain(2 * x - 1)
    x = random_images(6, seed=9)
    kwargs = {
        "methods": ["vanilla", "occlusion"],
        "metrics": ["deletion", "insertion", "mufidelity", "sensitivity", "randomization"],
        "steps": 4,
        "samples": 16,
        "method_options": {"occlusion": {"patch": 4, "stride": 4}},
        "progress": False,
    }
    ours = vizkit.evaluate(plain, x, preprocess="tf", **kwargs).to_dict()
    reference = vizkit.evaluate(built_in, x, **kwargs).to_dict()
    for method in kwargs["methods"]:
        for metric in kwargs["metrics"]:
            got = np.asarray(ours["table"][method][metric]["per_image"], np.float64)
            want = np.asarray(reference["table"][method][metric]["per_image"], np.float64)
            # float32 sums in another order (x * 255 before vs after the first kernel)
            np.testing.assert_allclose(
                got, want, rtol=2e-3, atol=2e-4, err_msg=f"{method} {metric}"
            )
    # Without the preprocessing the plain model sees other inputs: another card.
    other = vizkit.evaluate(plain, x, **kwargs).to_dict()
    for metric in ("deletion", "mufidelity"):
        assert not np.allclose(
            other["table"]["occlusion"][metric]["per_image"],
            reference["table"]["occlusion"][metric]["per_image"],
            atol=1e-3,
        )
