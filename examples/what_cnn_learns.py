"""Seed 004: what a CNN learns - filters, activation maximisation, saliency, occlusion, DeepDream.

Trains LeNet-5 on MNIST, then draws the first-layer filters; inputs that maximise conv
channels, a dense unit and each class; pixel saliency (vanilla and SmoothGrad); occlusion
heat maps; the most activating test digits of a filter; and DeepDream on a scikit-image photo.

    python examples/what_cnn_learns.py --out runs/what_cnn_learns
    python examples/what_cnn_learns.py --out /tmp/learns --quick
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure
from skimage import data as photos

import models
import vizkit
from vizkit.plot import plot_filters, plot_grid, plot_heatmap, plot_top_activating, save_figure


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/what_cnn_learns", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    args = parser.parse_args(argv)
    n_train, epochs, steps = (1000, 1, 8) if args.quick else (20000, 3, 128)
    out = Path(args.out)

    data = models.load_dataset("mnist")
    model = models.train("lenet5_relu", data, epochs=epochs, batch_size=64, max_train=n_train).model
    digits = data.x_test[:4]

    save_figure(
        plot_filters(vizkit.filters(model, "c1_conv"), title="c1_conv filters"),
        out / "filters.png",
        overwrite=True,
    )

    for layer, units in (("c3_conv", None), ("f6_dense", range(8)), ("predictions", None)):
        images = vizkit.maximize(model, layer, None if units is None else list(units), steps=steps)
        fig = plot_grid(images, cmap="gray", title=f"activation maximisation: {layer}")
        save_figure(fig, out / f"maximize_{layer}.png", overwrite=True)

    for method in ("vanilla", "smoothgrad"):
        maps = vizkit.saliency(model, digits, method=method)
        save_figure(
            _heatmaps(maps, digits, f"saliency ({method})"),
            out / f"saliency_{method}.png",
            overwrite=True,
        )
    heat = vizkit.occlusion(model, digits, patch=4, stride=2)
    save_figure(_heatmaps(heat, digits, "occlusion"), out / "occlusion.png", overwrite=True)

    pool = data.x_test[:500]
    indices, scores = vizkit.top_activating(model, "c3_conv", 0, pool, k=9)
    fig = plot_top_activating(pool, indices, scores, title="c3_conv channel 0: top test digits")
    save_figure(fig, out / "top_activating.png", overwrite=True)

    side = 56 if args.quick else 168
    gray = cv2.cvtColor(photos.astronaut()[:, 64:448], cv2.COLOR_RGB2GRAY)
    photo = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)[..., None] / 255.0
    dream = vizkit.deepdream(
        model,
        photo.astype(np.float32),
        ["c3_conv"],
        octaves=1 if args.quick else 3,
        steps=2 if args.quick else 20,
    )
    fig = plot_grid([photo, dream], titles=["photo", "dream"], ncols=2, cmap="gray")
    save_figure(fig, out / "deepdream.png", overwrite=True)
    print(f"figures in {out}")
    return out


def _heatmaps(maps, images, title: str) -> Figure:
    fig = Figure(figsize=(3 * len(maps), 3))
    for ax, heat, image in zip(fig.subplots(1, len(maps)), maps, images, strict=True):
        plot_heatmap(heat, image, ax=ax, colorbar=False)
    fig.suptitle(title)
    return fig


if __name__ == "__main__":
    main()
