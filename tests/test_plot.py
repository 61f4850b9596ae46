"""vizkit.plot: Figures with the expected axes and images, saved atomically to PNG."""

from pathlib import Path

import numpy as np
import pytest
from helpers import random_images, small_cnn
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import vizkit
from vizkit.methods.diagnose import Diagnosis, LayerReport
from vizkit.plot import (
    plot_diagnosis,
    plot_feature_maps,
    plot_filters,
    plot_grid,
    plot_heatmap,
    plot_hypercolumn,
    plot_layers_overview,
    plot_top_activating,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def test_plot_package_exports_every_function():
    assert set(vizkit.plot.__all__) == {
        "plot_attention",
        "plot_curves",
        "plot_diagnosis",
        "plot_feature_maps",
        "plot_filters",
        "plot_grid",
        "plot_heatmap",
        "plot_history",
        "plot_hypercolumn",
        "plot_layer_similarity",
        "plot_layers_overview",
        "plot_message",
        "plot_randomization",
        "plot_top_activating",
        "save_figure",
    }
    # Keras itself imports pyplot, so check our sources: no pyplot anywhere, and matplotlib
    # only inside vizkit/plot/.
    root = Path(vizkit.__file__).parent
    for source in root.rglob("*.py"):
        text = source.read_text()
        assert "matplotlib.pyplot" not in text and "import pyplot" not in text, source
        if "plot" not in source.relative_to(root).parts[:-1]:
            assert "import matplotlib" not in text and "from matplotlib" not in text, source


def test_grid_has_one_axes_per_image_and_a_shared_colorbar():
    imgs = random_images(5, (6, 6, 1))
    fig = plot_grid(imgs, titles=list("abcde"), ncols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5 and n_images(fig) == 5
    assert [ax.get_title() for ax in fig.axes] == list("abcde")
    with_bar = plot_grid(imgs, colorbar=True)
    assert len(with_bar.axes) == 6  # five tiles + one colour bar
    lims = {im.get_clim() for ax in with_bar.axes[:5] for im in ax.images}
    assert len(lims) == 1  # one shared scale
    rgb = plot_grid(random_images(2, (4, 4, 3)))
    assert rgb.axes[0].images[0].get_array().shape == (4, 4, 3)


def test_filters_and_feature_maps_from_a_model():
    model = small_cnn()
    tiles = vizkit.filters(model, "conv1")
    fig = plot_filters(tiles)
    assert len(fig.axes) == 4 and n_images(fig) == 4
    maps = vizkit.feature_maps(model, random_images(2))
    fig = plot_feature_maps(maps["conv2"], image_index=1, title="conv2")
    assert len(fig.axes) == 6
    assert fig.axes[5].get_title() == "5"
    fig = plot_feature_maps(maps["conv2"], max_maps=3)
    assert len(fig.axes) == 3
    overview = plot_layers_overview(maps, channels=5)
    # columns conv1 (4 channels), pool1 (4), conv2 (5 of 6)
    assert len(overview.axes) == 4 + 4 + 5
    assert [ax.get_title() for ax in overview.axes if ax.get_title()] == ["conv1", "pool1", "conv2"]


def test_heatmap_and_hypercolumn_overlays():
    image = random_images(1, (8, 8, 3))[0]
    ax = plot_heatmap(np.random.default_rng(0).random((4, 4)), image)
    assert isinstance(ax, Axes)
    assert len(ax.images) == 2  # image below, heat map above
    assert ax.images[1].get_extent() == ax.images[0].get_extent()
    assert len(ax.figure.axes) == 2  # plus the colour bar
    fig = Figure()
    own = fig.add_subplot()
    assert plot_heatmap(np.ones((4, 4)), ax=own, colorbar=False) is own
    assert len(own.images) == 1
    hc = plot_hypercolumn(np.random.default_rng(1).random((8, 8, 5)), image[..., 0])
    np.testing.assert_allclose(
        hc.images[1].get_array(), np.random.default_rng(1).random((8, 8, 5)).mean(-1), rtol=1e-6
    )


def test_top_activating_and_diagnosis_figures():
    images = random_images(10, (12, 12, 1))
    fig = plot_top_activating(images, [3, 1, 7], [0.9, 0.5, 0.25])
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title() == "#3 0.9"
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), images[3, ..., 0])
    reports = tuple(
        LayerReport(f"l{i}", (4, 4, 3), 3, dead, (), (), (), (), 0.5)
        for i, dead in enumerate([(), (0, 2)])
    )
    diagnosis = Diagnosis("m", 10, reports)
    fig = plot_diagnosis(diagnosis)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].patches) == 3 * len(diagnosis.layers)
    heights = [p.get_height() for p in fig.axes[0].patches[:2]]  # the "dead" bars
    np.testing.assert_allclose(heights, [0.0, 2 / 3])


def test_save_figure_writes_png_atomically_and_refuses_to_overwrite(tmp_path):
    fig = plot_grid(random_images(2, (4, 4, 1)))
    path = save_figure(fig, tmp_path / "sub" / "grid.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_figure(fig, path)
    before = path.stat().st_mtime_ns
    save_figure(fig.axes[0], path, overwrite=True, dpi=50)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_mtime_ns >= before
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid.png"]  # no temp files left
    with pytest.raises(ValueError, match="no suffix"):
        save_figure(fig, tmp_path / "noext")


def test_plot_errors_name_the_problem():
    with pytest.raises(ValueError, match="empty"):
        plot_grid([])
    with pytest.raises(ValueError, match="titles has 1 entries for 2 images"):
        plot_grid(random_images(2, (4, 4, 1)), titles=["a"])
    with pytest.raises(ValueError, match=r"image 0 has shape \(4, 4, 5\)"):
        plot_grid(random_images(1, (4, 4, 5)))
    with pytest.raises(ValueError, match="heatmap must have shape"):
        plot_heatmap(np.zeros((2, 3, 4)))


def test_history_draws_train_and_validation_curves_per_metric():
    from vizkit.plot import plot_history

    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]}
    fig = plot_history(history, title="run")
    loss_ax, acc_ax = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), history["val_loss"])
    np.testing.assert_array_equal(acc_ax.lines[0].get_xdata(), [1, 2, 3])
    assert len(acc_ax.lines) == 1  # no validation accuracy recorded


def test_history_without_known_metrics_names_what_it_has():
    from vizkit.plot import plot_history

    with pytest.raises(ValueError, match=r"has none of the metrics.*\['mae'\]"):
        plot_history({"mae": [1.0]})
