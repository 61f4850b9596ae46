"""Seed 000: the AlexNet-style CNN on MNIST (reported there at 97.27% test accuracy).

Three 3x3 conv blocks (64/128/256 channels) with max pooling, LRN and dropout, then FC
1024-1024 (``models.create_model("alexnet_mnist")``). Trains, prints the test accuracy next to
the seed's figure, saves the model and its first-layer filters.

    python examples/alexnet_mnist.py --out runs/alexnet              # a few minutes on 2 cores
    python examples/alexnet_mnist.py --out /tmp/alexnet --quick      # seconds (narrow, tiny)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import models
import vizkit
from vizkit.plot import plot_filters, save_figure

SEED_ACCURACY = 0.9727


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/alexnet_mnist", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    args = parser.parse_args(argv)
    # Quick: an eighth of the width on 1000 images; full: the seed's width on 20000 images.
    width, n_train, epochs = (0.125, 1000, 1) if args.quick else (1.0, 20000, 2)
    out = Path(args.out)

    data = models.load_dataset("mnist")
    print(f"data: {data.source}")
    model = models.create_model("alexnet_mnist", width=width)
    result = models.train(
        model,
        data,
        epochs=args.epochs or epochs,
        batch_size=64,
        max_train=n_train,
        out=out / "alexnet_mnist",
        overwrite=True,
    )
    print(f"test accuracy {result.test_accuracy:.4f} (seed 000 reports {SEED_ACCURACY:.4f})")
    fig = plot_filters(vizkit.filters(result.model, "conv1"), title="AlexNet-MNIST conv1 filters")
    save_figure(fig, out / "conv1_filters.png", overwrite=True)
    print(f"model and figures in {out}")
    return out


if __name__ == "__main__":
    main()
