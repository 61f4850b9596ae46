"""Test accuracy of zoo architectures trained here, next to the published figures.

Run ``python -m benchmarks.zoo_accuracy --models alexnet_mnist resnet18 [--quick]``. Each model
is built with ``models.create_model`` (width-reduced where the plan says so, to fit 2 CPU
cores), trained with ``models.train`` and evaluated on the full test split. Results merge into
``benchmarks/results/zoo_accuracy.json`` and ``.md`` (one row per model and setting, the newest
run wins), with the exact command that produced each row.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

import models

from ._timing import RESULTS, machine

# Published references (DESIGN.md): the Fashion-MNIST benchmark table of the Debian package's
# README and seed 000's AlexNet-style CNN on MNIST.
PUBLISHED = {
    ("fashion_mnist", "2 Conv+pooling (TF doc)"): 0.916,
    ("fashion_mnist", "vgg16"): 0.935,
    ("fashion_mnist", "inception_v1 (GoogLeNet)"): 0.937,
    ("fashion_mnist", "resnet18"): 0.949,
    ("fashion_mnist", "human"): 0.835,
    ("mnist", "alexnet_mnist (seed 000)"): 0.9727,
}


@dataclass(frozen=True)
class Plan:
    """How one model is trained for this benchmark."""

    dataset: str
    width: float
    epochs: int
    batch_size: int = 128
    augment: bool | str = False
    target: float | None = None
    learning_rate: float | None = None


PLANS = {
    "alexnet_mnist": Plan("mnist", width=0.5, epochs=4, target=0.985),
    "resnet18": Plan("fashion_mnist", width=0.25, epochs=20, augment="shift+flip", target=0.925),
    "vgg16": Plan("fashion_mnist", width=0.25, epochs=10, augment="shift+flip"),
    "inception_v1": Plan("fashion_mnist", width=0.25, epochs=10, augment="shift+flip"),
    "lenet5": Plan("mnist", width=1.0, epochs=5, target=0.985),
}
DEFAULT_PLAN = Plan("fashion_mnist", width=0.25, epochs=5)
QUICK = {"epochs": 1, "max_train": 5000}


def run(name: str, plan: Plan, *, quick: bool, width: float | None, epochs: int | None) -> dict:
    """Train ``name`` according to ``plan`` (overridden by the command line) and report."""
    data = models.load_dataset(plan.dataset)
    width = plan.width if width is None else width
    epochs = (QUICK["epochs"] if quick else plan.epochs) if epochs is None else epochs
    kwargs = {"width": width} if width != 1.0 else {}
    keras.utils.set_random_seed(0)
    model = models.create_model(name, data.input_shape, data.num_classes, **kwargs)
    result = models.train(
        model,
        data,
        epochs=epochs,
        batch_size=plan.batch_size,
        augment=plan.augment,
        learning_rate=plan.learning_rate,
        max_train=QUICK["max_train"] if quick else None,
        verbose=True,
    )
    row = {
        "model": name,
        "dataset": plan.dataset,
        "width": width,
        "params": int(model.count_params()),
        "epochs": epochs,
        "batch_size": plan.batch_size,
        "augment": plan.augment,
        # models.train holds out 10% of the training images for validation.
        "train_images": _fitted(QUICK["max_train"] if quick else len(data.x_train)),
        "test_accuracy": round(float(result.test_accuracy), 4),
        "target": plan.target,
        "met_target": None if plan.target is None else bool(result.test_accuracy >= plan.target),
        "seconds": round(float(result.seconds), 1),
        "quick": quick,
        "data_source": data.source,
    }
    print(json.dumps(row), flush=True)
    return row


def _fitted(n: int, validation_split: float = 0.1) -> int:
    return n - round(validation_split * n)


def _merge(rows: list[dict], command: str) -> list[dict]:
    file = RESULTS / "zoo_accuracy.json"
    old = json.loads(file.read_text())["rows"] if file.exists() else []
    key = ("model", "dataset", "width", "epochs", "quick")
    fresh = {tuple(r[k] for k in key) for r in rows}
    kept = [r for r in old if tuple(r.get(k) for k in key) not in fresh]
    for r in rows:
        r["command"] = command
        r["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return kept + rows


def write(rows: list[dict]) -> None:
    """Write ``zoo_accuracy.json`` and the Markdown table with the published figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zoo_accuracy.json").write_text(
        json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n"
    )
    lines = [
        "# Zoo accuracy",
        "",
        "Trained on this machine (2 CPU cores) with `models.train`; full test split.",
        "`width` < 1 means the channel counts were multiplied by it (a narrower network than the",
        "paper's); `quick` rows train 1 epoch on 5000 images and are smoke runs, not results.",
        "",
        "| model | dataset | width | params | epochs | augment | test accuracy | target | met | "
        "seconds | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['width']} | {r['params']:,} | {r['epochs']}"
            f"{' (quick)' if r['quick'] else ''} | {r['augment']} | {r['test_accuracy']:.4f} | "
            f"{r['target'] or '-'} | {r['met_target'] if r['met_target'] is not None else '-'} | "
            f"{r['seconds']} | `{r['command']}` |"
        )
    lines += [
        "",
        "## Published figures",
        "",
        "| dataset | model | test accuracy |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {d} | {m} | {a:.4f} |" for (d, m), a in PUBLISHED.items()]
    lines += [
        "",
        "Fashion-MNIST figures: the benchmark table in the README of the Debian",
        "`dataset-fashion-mnist` package (full-width networks, longer training). MNIST: seed 000.",
        "",
    ]
    (RESULTS / "zoo_accuracy.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["alexnet_mnist", "resnet18"], help="registered names"
    )
    parser.add_argument("--quick", action="store_true", help="1 epoch on 5000 images (smoke run)")
    parser.add_argument("--width", type=float, default=None, help="override the plan's width")
    parser.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    args = parser.parse_args(argv)
    known = set(models.list_models())
    unknown = [m for m in args.models if m not in known]
    if unknown:
        parser.error(f"unknown models {unknown}; registered: {sorted(known)}")
    command = "python -m benchmarks.zoo_accuracy " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    rows = [
        run(
            name,
            PLANS.get(name, DEFAULT_PLAN),
            quick=args.quick,
            width=args.width,
            epochs=args.epochs,
        )
        for name in args.models
    ]
    write(_merge(rows, command))
    print(f"wrote {RESULTS / 'zoo_accuracy.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
