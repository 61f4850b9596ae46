"""Seed 000's RBM experiment against scikit-learn's ``BernoulliRBM``: speed and reconstruction.

    python -m benchmarks.rbm_vs_sklearn            # full MNIST (60k), 30 epochs (the seed's run)
    python -m benchmarks.rbm_vs_sklearn --quick    # MNIST-5k, 3 epochs

Both models are 784-64 Bernoulli-Bernoulli RBMs trained with minibatches of 10. Ours: CD-1,
learning rate 0.01, momentum 0.95, Xavier initialisation (seed 000). scikit-learn: PCD-1 without
momentum, at its default learning rate 0.1 and at the seed's 0.01. After every epoch both are
scored the same way, in NumPy: the mean squared error of one mean-field up-down pass
``x -> sigmoid(x W + c) -> sigmoid(h Wᵀ + b)`` on the training and the test images. Epoch times
exclude that scoring. scikit-learn's epochs are driven by the same ``_fit`` loop that its ``fit``
runs (checked against one plain ``fit(n_iter=E)`` run, whose time is reported too).

Writes ``benchmarks/results/rbm.md``, ``rbm.json`` and ``rbm_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.neural_network import BernoulliRBM
from sklearn.utils import gen_even_slices

import models
from models.rbm import RBM

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 10


NOTES = [
    "## Notes",
    "",
    "- Reconstruction error is not what either model maximises. CD-1 restarts its chain at the"
    " data, which directly rewards good one-step reconstructions; PCD follows the likelihood"
    " gradient more closely and typically reconstructs worse, so this comparison favours CD.",
    "- Our learning rate 0.01 with classical momentum 0.95 is an effective step of about"
    " 0.01 / (1 - 0.95) = 0.2, close to scikit-learn's default 0.1; seed 000's TF1 code damps"
    " momentum by (1 - momentum) instead, an effective step of 0.01.",
    "- The step is so small (10 x 784 x 64) that per-epoch time is dominated by per-operation"
    " overhead: NumPy's Python loop in scikit-learn versus the TensorFlow executor's loop inside"
    " one graph. Both suffer on a loaded machine; on an idle one a 50k-image epoch took about"
    " 0.45-0.6 s for ours and 1.1 s for BernoulliRBM during development. XLA (`jit_compile`)"
    " gave no further gain.",
    "",
]


def recon_mse(x: np.ndarray, w: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Mean squared error of one mean-field up-down pass; ``w`` is (n_visible, n_hidden)."""
    total = 0.0
    for i in range(0, len(x), 8192):
        v = x[i : i + 8192]
        r = expit(expit(v @ w + c) @ w.T + b)
        total += float(np.sum((v - r) ** 2, dtype=np.float64))
    return total / x.size


class SklearnRun:
    """``BernoulliRBM.fit`` split into epochs: the same initialisation and the same loop body."""

    def __init__(self, x, x_test, seed, learning_rate):
        self.x, self.x_test, self.seed, self.learning_rate = x, x_test, seed, learning_rate
        self.rng = np.random.RandomState(seed)  # shared, so it carries on across epochs
        self.model = BernoulliRBM(
            n_components=64,
            learning_rate=learning_rate,
            batch_size=BATCH,
            n_iter=1,
            random_state=self.rng,
        )
        n_batches = -(-len(x) // BATCH)
        self.slices = list(gen_even_slices(n_batches * BATCH, n_batches, n_samples=len(x)))
        self.result = {"epoch_seconds": [], "train_mse": [], "test_mse": []}

    def epoch(self) -> None:
        start = time.perf_counter()
        if not self.result["epoch_seconds"]:
            self.model.fit(self.x)  # initialises exactly as fit(n_iter=E) does, then epoch 1
        else:
            for batch in self.slices:  # the loop body of BernoulliRBM.fit
                self.model._fit(self.x[batch], self.rng)
        self.result["epoch_seconds"].append(time.perf_counter() - start)
        m = self.model
        w, b, c = m.components_.T, m.intercept_visible_, m.intercept_hidden_
        self.result["train_mse"].append(recon_mse(self.x, w, b, c))
        self.result["test_mse"].append(recon_mse(self.x_test, w, b, c))

    def check_against_fit(self, epochs: int) -> None:
        """Time the official ``fit(n_iter=E)`` and check it learns the same weights."""
        plain = BernoulliRBM(
            n_components=64,
            learning_rate=self.learning_rate,
            batch_size=BATCH,
            n_iter=epochs,
            random_state=np.random.RandomState(self.seed),
        )
        start = time.perf_counter()
        plain.fit(self.x)
        self.result["fit_seconds"] = time.perf_counter() - start
        same = np.allclose(plain.components_, self.model.components_, rtol=1e-5, atol=1e-6)
        self.result["loop_equals_fit"] = bool(same)


def run_all(x, x_test, epochs, seed):
    """Train ours epoch by epoch and, after each of our epochs, one epoch of every peer.

    Interleaving keeps the comparison fair on a shared machine whose load drifts.
    """
    rbm = RBM(784, 64, learning_rate=0.01, momentum=0.95, init="xavier", seed=seed)
    peers = {lr: SklearnRun(x, x_test, seed, lr) for lr in (0.1, 0.01)}
    ours = {"epoch_seconds": [], "train_mse": [], "test_mse": []}
    clock = [time.perf_counter()]

    def after_epoch(epoch, model):
        ours["epoch_seconds"].append(time.perf_counter() - clock[0])
        w, b, c = model.weights, model.visible_bias, model.hidden_bias
        ours["train_mse"].append(recon_mse(x, w, b, c))
        ours["test_mse"].append(recon_mse(x_test, w, b, c))
        for peer in peers.values():
            peer.epoch()
        clock[0] = time.perf_counter()

    rbm.fit(x, epochs=epochs, batch_size=BATCH, verbose=True, callback=after_epoch)
    for peer in peers.values():
        peer.check_against_fit(epochs)
    return rbm, ours, peers


def table(ours, theirs, label):
    lines = [
        f"| epoch | ours s | {label} s | time ratio (ours/sk) | ours train MSE | {label} train MSE"
        " | ours test MSE | sk test MSE | test MSE ratio (ours/sk) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in range(len(ours["train_mse"])):
        t0, t1 = ours["epoch_seconds"][e], theirs["epoch_seconds"][e]
        a0, a1 = ours["train_mse"][e], theirs["train_mse"][e]
        b0, b1 = ours["test_mse"][e], theirs["test_mse"][e]
        lines.append(
            f"| {e + 1} | {t0:.3f} | {t1:.3f} | {t0 / t1:.2f} | {a0:.5f} | {a1:.5f} | {b0:.5f}"
            f" | {b1:.5f} | {b0 / b1:.2f} |"
        )
    return "\n".join(lines)


def summary_row(name, res, epochs):
    steady = float(np.median(res["epoch_seconds"][1:] or res["epoch_seconds"]))
    return (
        f"| {name} | {steady:.3f} | {sum(res['epoch_seconds']):.1f} | "
        f"{res['train_mse'][-1]:.5f} | {res['test_mse'][-1]:.5f} |"
    )


def figure(path, runs, rbm, sk, x_test, y_test):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.3])
    ax = left.subplots()
    for name, res in runs.items():
        epochs = np.arange(1, len(res["test_mse"]) + 1)
        ax.plot(epochs, res["test_mse"], marker="o", ms=3, label=name)
    ax.set(xlabel="epoch", ylabel="test reconstruction MSE", title="784-64 RBM on MNIST")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    picks = x_test[[int(np.flatnonzero(y_test == d)[0]) for d in range(10)]]  # one per digit
    ours = rbm.reconstruct(picks)
    h = sk.transform(picks)
    theirs = 1.0 / (1.0 + np.exp(-(h @ sk.components_ + sk.intercept_visible_)))
    axes = right.subplots(3, 10)
    for row, (title, imgs) in enumerate(
        [("test image", picks), ("ours", ours), ("BernoulliRBM", theirs)]
    ):
        for col in range(10):
            axes[row, col].imshow(imgs[col].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
        axes[row, 0].set_ylabel(title, fontsize=8)
    right.suptitle("one mean-field up-down pass")
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="MNIST-5k for 3 epochs")
    parser.add_argument("--dataset", choices=["mnist", "mnist5k"], default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (3 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    name = args.dataset or ("mnist5k" if args.quick else "mnist")
    epochs = args.epochs or (3 if args.quick else 30)
    load_before = os.getloadavg()[0]
    data = models.load_dataset(name)
    x = data.x_train.reshape(len(data.x_train), -1)
    x_test = data.x_test.reshape(len(data.x_test), -1)
    print(f"{name}: {x.shape[0]} train / {x_test.shape[0]} test rows, {epochs} epochs")

    rbm, ours, peers = run_all(x, x_test, epochs, args.seed)
    runs = {"ours (CD-1, lr 0.01, momentum 0.95)": ours}
    for lr, peer in peers.items():
        runs[f"BernoulliRBM (PCD-1, lr {lr})"] = peer.result
    sks = {lr: peer.model for lr, peer in peers.items()}

    command = "python -m benchmarks.rbm_vs_sklearn" + ("" if argv is None else " " + " ".join(argv))
    if argv is None:
        command = "python -m benchmarks.rbm_vs_sklearn " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "rbm" if not args.quick else "rbm_quick"
    meta = {
        "command": command.strip(),
        "dataset": name,
        "source": data.source if hasattr(data, "source") else "",
        "train_rows": int(x.shape[0]),
        "test_rows": int(x_test.shape[0]),
        "epochs": epochs,
        "batch_size": BATCH,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "runs": runs,
    }
    (args.out / f"{stem}.json").write_text(json.dumps(meta, indent=1))
    keys = list(runs)
    md = [
        "# RBM: vizkit `models.RBM` vs scikit-learn `BernoulliRBM`",
        "",
        f"Command: `{meta['command']}` (run with `nice -n 10` on a shared {os.cpu_count()}-CPU"
        f" machine, no GPU; 1-minute load average {meta['load_average'][0]} at the start and"
        f" {meta['load_average'][1]} at the end, so absolute times are inflated; the epochs of"
        " the three models are interleaved so that the ratios stay fair).",
        f"Data: {name}, {x.shape[0]} training / {x_test.shape[0]} test images, {epochs} epochs,"
        f" minibatch {BATCH}. Source: {meta['source']}.",
        "",
        "Both: 784 visible, 64 hidden Bernoulli units. Ours: CD-1, lr 0.01, momentum 0.95,"
        " Xavier init, reshuffled every epoch, one compiled TensorFlow graph per epoch."
        " scikit-learn: PCD-1, no momentum, N(0, 0.01) init, fixed batch order.",
        "Error: mean squared error of one mean-field up-down pass, computed in NumPy from each"
        " model's weights after the epoch. Epoch times exclude that scoring; our first epoch"
        " includes tracing the graph.",
        "",
        "## Summary (after the last epoch)",
        "",
        "| model | median s/epoch | total s | train MSE | test MSE |",
        "|---|---:|---:|---:|---:|",
        *[summary_row(k, runs[k], epochs) for k in keys],
        "",
        "`BernoulliRBM.fit(n_iter=E)` wall time (official entry point): "
        + ", ".join(
            f"lr {lr}: {runs[k]['fit_seconds']:.1f} s "
            f"(same weights as our epoch loop: {runs[k]['loop_equals_fit']})"
            for lr, k in zip((0.1, 0.01), keys[1:], strict=True)
        ),
        "",
    ]
    for k in keys[1:]:
        md += [f"## Per epoch: ours vs {k}", "", table(ours, runs[k], "sk"), ""]
    md += [f"![error curves and reconstructions]({stem}_curves.png)", "", *NOTES]
    (args.out / f"{stem}.md").write_text("\n".join(md))
    figure(args.out / f"{stem}_curves.png", runs, rbm, sks[0.1], x_test, data.y_test)
    print("\n".join(md))


if __name__ == "__main__":
    main()
