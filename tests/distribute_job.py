"""Run models.train under tf.distribute in a fresh process, for tests/test_distribute.py.

    python tests/distribute_job.py SPEC.json

Logical CPU devices and multi-worker collective ops must be set up before TensorFlow runs its
first op, hence a process of its own. SPEC holds ``devices`` (logical CPU devices to create),
``result`` (a folder) and ``runs``: a list of ``{"name", "strategy", "kwargs", "interrupt_at",
"cli"}``. Each run writes ``<result>/<name>.npz`` (the trained weights, in ``model.weights``
order) and ``<result>/<name>.json`` (history, epochs run, path, backup contents, or the error).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The same small data and model for every run of every process: 8 batches of 32 per epoch.
MAX_TRAIN = 256


class Interrupted(Exception):
    """Stands for a preempted job."""


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result = Path(spec["result"])
    result.mkdir(parents=True, exist_ok=True)
    import tensorflow as tf

    if any(run["strategy"] == "multiworker" for run in spec["runs"]):
        from models.distribute import resolve_strategy

        resolve_strategy("multiworker")  # first, before TensorFlow runs anything
    if spec.get("devices", 1) > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        config = [tf.config.LogicalDeviceConfiguration()] * spec["devices"]
        tf.config.set_logical_device_configuration(cpu, config)
    tf.config.experimental.enable_op_determinism()
    for run in spec["runs"]:
        info = _run(run, result)
        (result / f"{run['name']}.json").write_text(json.dumps(info))
    return 0


def _run(run: dict, result: Path) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    import models

    if run.get("cli"):
        from vizkit.cli import main as cli

        return {"exit": cli(run["cli"])}
    strategy = run["strategy"]
    if strategy == "one":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    epochs_run: list[int] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == run.get("interrupt_at"):
                raise Interrupted(f"stopped at the start of epoch {epoch}")
            epochs_run.append(int(epoch))

    kwargs = {
        "epochs": 2,
        "batch_size": 32,
        "max_train": MAX_TRAIN,
        "validation_split": 0.0,
        # Plain SGD would miss an optimizer state lost on resuming; Adam would hide a wrongly
        # scaled gradient (it normalises the step): SGD with momentum catches both.
        "optimizer": keras.optimizers.SGD(learning_rate=0.2, momentum=0.9),
        "augment": "shift+flip",
        "verbose": False,
        **run.get("kwargs", {}),
    }
    backup = kwargs.get("backup_dir")
    given = tiny_cnn()
    before = [w.copy() for w in given.get_weights()]
    try:
        trained = models.train(given, "digits", strategy=strategy, callbacks=[Record()], **kwargs)
    except Interrupted as exc:
        files = sorted(p.name for p in Path(backup).iterdir()) if backup else []
        return {"interrupted": str(exc), "epochs_run": epochs_run, "backup_files": files}
    except ValueError as exc:
        return {"error": str(exc)}
    np.savez(result / f"{run['name']}.npz", *[w.numpy() for w in trained.model.weights])
    return {
        "history": trained.history,
        "epochs_run": epochs_run,
        "path": None if trained.path is None else str(trained.path),
        "backup_left": bool(backup) and Path(backup).exists(),
        "result_is_caller_model": trained.model is given,
        "caller_model_unchanged": all(
            np.array_equal(a, b) for a, b in zip(given.get_weights(), before, strict=True)
        ),
    }


def tiny_cnn():
    """A small, dropout-free CNN for 8x8 digits, seeded so every process builds the same one."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs, name="tiny_cnn")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
