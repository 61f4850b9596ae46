"""Deep belief network on MNIST: greedy RBM pretraining, then the two ways to classify.

Run ``python -m benchmarks.dbn_mnist [--quick] [--out DIR]``. A ``[784, 500, 500]`` DBN (the
lower layers of Hinton, Osindero & Teh 2006) is pretrained layer by layer with CD-1, then

* **label units** (seed 000, step 5): the top RBM is trained on ``[h, one_hot(label)]`` and a
  digit is classified by the free energy of the top RBM with each label clamped in turn;
* **softmax head**: the stack becomes sigmoid Dense layers initialised from the RBMs, topped by
  a softmax and fine-tuned by backpropagation;
* **baseline**: the same fine-tuning from the untrained RBMs' random (Glorot-uniform) weights,
  which shows what the pretraining contributes.

Results go to ``dbn.json`` and ``dbn.md`` in ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import models

from .timing import RESULTS, machine

SIZES = [784, 500, 500]
# Hinton's settings for minibatches of 100 (the MATLAB code of Hinton & Salakhutdinov 2006).
RBM_OPTIONS = {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 2e-4}
FULL = {"dataset": "mnist", "pretrain_epochs": 5, "finetune_epochs": 5}
QUICK = {"dataset": "mnist5k", "pretrain_epochs": 2, "finetune_epochs": 1}


def run(dataset: str, pretrain_epochs: int, finetune_epochs: int) -> dict:
    """Pretrain, classify with label units, fine-tune, train the baseline; return the scores."""
    data = models.load_dataset(dataset)
    x, y = data.x_train.reshape(len(data.x_train), -1), data.y_train
    x_test, y_test = data.x_test.reshape(len(data.x_test), -1), data.y_test
    row: dict = {"dataset": dataset, "source": data.source, "train": len(x), "test": len(x_test)}

    start = time.perf_counter()
    labelled = models.DBN(SIZES, seed=0, **RBM_OPTIONS)
    errors = labelled.pretrain(x, y=y, epochs=pretrain_epochs, batch_size=100, verbose=False)
    row["pretrain_seconds"] = round(time.perf_counter() - start, 1)
    row["reconstruction_error"] = [round(float(e[-1]), 5) for e in errors]
    row["label_units_accuracy"] = float(np.mean(labelled.predict(x_test) == y_test))

    # The softmax head reuses the same pretrained stack (only the top RBM's first 500 visible
    # rows are kept: the label units are not an input of the classifier).
    start = time.perf_counter()
    tuned = labelled.fine_tune(x, y, epochs=finetune_epochs, batch_size=100, verbose=False)
    row["finetune_seconds"] = round(time.perf_counter() - start, 1)
    row["fine_tuned_accuracy"] = _accuracy(tuned, x_test, y_test)

    # Baseline: the same fine-tuning from the RBMs' untrained (Glorot-uniform) weights.
    untrained = models.DBN(SIZES, seed=0, **RBM_OPTIONS)
    baseline = untrained.fine_tune(x, y, epochs=finetune_epochs, batch_size=100, verbose=False)
    row["baseline_accuracy"] = _accuracy(baseline, x_test, y_test)
    return row


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x, batch_size=1000, verbose=0).argmax(axis=1) == y))


def write(row: dict, settings: dict, out: Path, command: str) -> None:
    """``dbn.json`` and the Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "settings": settings, "command": command, "result": row}
    (out / "dbn.json").write_text(json.dumps(payload, indent=2) + "\n")
    p, f = settings["pretrain_epochs"], settings["finetune_epochs"]
    lines = [
        "# Deep belief network on MNIST",
        "",
        f"Command: `{command}`. Data: {row['dataset']} ({row['train']} training, {row['test']} "
        f"test images; {row['source']}).",
        "",
        f"DBN {SIZES}: each RBM trained {p} epochs with CD-1 (lr {RBM_OPTIONS['learning_rate']}, "
        f"momentum {RBM_OPTIONS['momentum']}, weight decay {RBM_OPTIONS['weight_decay']}, "
        "minibatch 100, Xavier init); the top RBM sees the "
        "500 hidden units of the first plus 10 label units (seed 000). Pretraining took "
        f"{row['pretrain_seconds']} s; final reconstruction MSE per RBM: "
        f"{row['reconstruction_error']}.",
        "",
        "| classifier | test accuracy |",
        "| --- | ---: |",
        f"| label units on the top RBM (lowest free energy), no backpropagation | "
        f"{row['label_units_accuracy']:.4f} |",
        f"| pretrained stack + softmax, fine-tuned {f} epochs (Adam 1e-3, {row['finetune_seconds']}"
        f" s) | {row['fine_tuned_accuracy']:.4f} |",
        f"| same network and fine-tuning from a random (Glorot-uniform) start | "
        f"{row['baseline_accuracy']:.4f} |",
        "",
        "Hinton et al. (2006) report 1.25% error for a 784-500-500-2000 DBN with labels after",
        "greedy pretraining *and* a long up-down fine-tuning, which is not run here.",
        "",
    ]
    (out / "dbn.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MNIST-5k, 2 + 1 epochs")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    command = "python -m benchmarks.dbn_mnist" + (" --quick" if args.quick else "")
    row = run(**settings)
    write(row, settings, out, command)
    print((out / "dbn.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
