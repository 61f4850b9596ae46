"""Seed 000: a Bernoulli-Bernoulli RBM on MNIST (784 visible, 64 hidden units).

Settings of the seed: learning rate 0.01, momentum 0.95, minibatches of 10, Xavier initial
weights, mean squared reconstruction error (30 epochs there; 5 here by default). Writes the
error curve, the 64 filters and reconstructions of test digits to ``--out``.

    python examples/rbm_mnist.py --out runs/rbm            # about a minute on 2 CPU cores
    python examples/rbm_mnist.py --out /tmp/rbm --quick    # seconds
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import models
from vizkit.plot import plot_grid, save_figure


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/rbm_mnist", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    args = parser.parse_args(argv)
    n_train, epochs = (500, 1) if args.quick else (10000, 5)
    epochs = args.epochs or epochs
    out = Path(args.out)

    data = models.load_dataset("mnist")
    print(f"data: {data.source}")
    x = data.x_train[:n_train].reshape(-1, 784)
    rbm = models.RBM(784, 64, learning_rate=0.01, momentum=0.95, seed=0)
    errors = rbm.fit(x, epochs=epochs, batch_size=10)
    print(f"reconstruction error (mse) per epoch: {np.round(errors, 4).tolist()}")

    curve = Figure(figsize=(4, 3))
    ax = curve.add_subplot()
    ax.plot(np.arange(1, len(errors) + 1), errors, "o-")
    ax.set(xlabel="epoch", ylabel="reconstruction mse", title="RBM training")
    save_figure(curve, out / "rbm_error.png", overwrite=True)

    filters = np.asarray(rbm.weights).T.reshape(-1, 28, 28)
    save_figure(
        plot_grid(filters, ncols=8, cmap="gray", title="RBM filters"),
        out / "rbm_filters.png",
        overwrite=True,
    )
    test = data.x_test[:10].reshape(-1, 784)
    pairs = np.concatenate([test, rbm.reconstruct(test)]).reshape(-1, 28, 28)
    save_figure(
        plot_grid(pairs, ncols=10, cmap="gray", title="test digits (top) and reconstructions"),
        out / "rbm_reconstructions.png",
        overwrite=True,
    )
    rbm.save(out / "rbm.npz")
    print(f"figures in {out}")
    return out


if __name__ == "__main__":
    main()
