"""Seed 001: LeNet-5 on MNIST, its misclassified test digits, feature maps and hypercolumns.

Trains LeNet-5 (ReLU variant), draws the grid of misclassified test digits, the feature maps of
every layer for one digit (empty or input-like maps hint at a badly sized layer) and the
hypercolumn average of the conv layers.

    python examples/lenet5_feature_maps.py --out runs/lenet5
    python examples/lenet5_feature_maps.py --out /tmp/lenet5 --quick
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import models
import vizkit
from vizkit.plot import plot_feature_maps, plot_grid, plot_hypercolumn, save_figure


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/lenet5_feature_maps", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    args = parser.parse_args(argv)
    n_train, epochs = (1000, 1) if args.quick else (20000, 3)
    out = Path(args.out)

    data = models.load_dataset("mnist")
    result = models.train(
        "lenet5_relu", data, epochs=args.epochs or epochs, batch_size=64, max_train=n_train
    )
    model = result.model

    predicted = model.predict(data.x_test, batch_size=512, verbose=0).argmax(axis=1)
    wrong = np.flatnonzero(predicted != data.y_test)[:24]
    titles = [f"{data.y_test[i]} as {predicted[i]}" for i in wrong]
    grid = plot_grid(
        data.x_test[wrong],
        titles=titles,
        ncols=8,
        cmap="gray",
        title=f"misclassified: {len(np.flatnonzero(predicted != data.y_test))}",
    )
    save_figure(grid, out / "misclassified.png", overwrite=True)

    digit = data.x_test[:1]
    layers = ["c1_conv", "s2_pool", "c3_conv", "s4_pool", "c5_conv"]
    maps = vizkit.feature_maps(model, digit, layers=layers)  # one forward pass for all layers
    for name, array in maps.items():
        fig = plot_feature_maps(array, title=f"{name} {array.shape[1:]}")
        save_figure(fig, out / f"feature_maps_{name}.png", overwrite=True)

    columns = vizkit.hypercolumns(model, digit, ["c1_conv", "c3_conv", "c5_conv"])
    fig = Figure(figsize=(4, 4))
    plot_hypercolumn(columns[0], digit[0], ax=fig.add_subplot())
    save_figure(fig, out / "hypercolumns.png", overwrite=True)
    print(f"test accuracy {result.test_accuracy:.4f}; figures in {out}")
    return out


if __name__ == "__main__":
    main()
