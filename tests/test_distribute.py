"""models.train under tf.distribute: mirrored replicas, multi-worker processes, resuming, bad input.

Logical CPU devices and multi-worker collective ops must be configured before TensorFlow runs its
first op, so the distributed runs happen in fresh processes (``tests/distribute_job.py``), all
started at once by one fixture: one process that splits its CPU into two logical devices, and two
worker processes that form a MultiWorkerMirroredStrategy cluster on free localhost ports (as
TensorFlow's own multi-worker tests do). Every run trains the same seeded tiny CNN on the same
256 digits for 2 epochs of 8 global batches of 32, with shift+flip augmentation, SGD with
momentum and no dropout, under ``enable_op_determinism``.

The single-device reference uses ``OneDeviceStrategy``: the same seeded tf.data pipeline on one
device (``strategy=None`` keeps Keras' own shuffling, a different but equally valid order).

Tolerance: ``ATOL = 1e-5``. The float32 spacing of weights near 0.5 is 6e-8; splitting a batch
of 32 into two of 16 and all-reducing the gradients changes only the summation order, i.e. a few
ulps per step, and 16 momentum steps carry that to the 1e-7 level (measured: at most 2e-7). 1e-5
leaves 50x headroom, while training moves the weights by 0.1 to 0.5, so a lost or repeated
step, a wrong batch or a wrongly scaled gradient shows as 1e-2 or more.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distribute_job import tiny_cnn

import models
from models import distribute
from models.datasets import Dataset

HERE = Path(__file__).resolve().parent
ATOL = 1e-5
DEADLINE = 420  # seconds from the start of the jobs; a hung collective is killed then


# -- in this process ------------------------------------------------------------------------------
def _tiny_dataset(n: int = 48) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.random((n, 6, 6, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    return Dataset(x, y, x[:8], y[:8], ["low", "high"], "tiny", "random test data")


def _tiny_model():
    import keras

    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(h))


def test_pipeline_epochs_are_seeded_permutations():
    x = np.zeros((10, 4, 4, 1), np.float32)
    pipeline = distribute.EpochPipeline(x, np.arange(10), 4, seed=3)
    orders = []
    for epoch in (0, 1, 0):
        pipeline.on_epoch_begin(epoch)
        batches = [labels.numpy() for _, labels in pipeline.dataset]
        assert [len(b) for b in batches] == [4, 4, 2]
        orders.append(np.concatenate(batches))
    for order in orders:
        assert sorted(order) == list(range(10))
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    np.testing.assert_array_equal(orders[0], orders[2])  # a resumed epoch sees the same order


def test_augment_matches_a_numpy_shift_and_flip():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((6, 5, 7, 2), dtype=np.float32)
    draws = rng.random((3, 6)).astype(np.float32)
    draws[:2, 0] = [0.0, 0.9999]  # the extreme offsets, -2 and +2
    got = distribute.augment(tf.constant(images), tf.constant(draws), 2, True).numpy()
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for i in range(6):
        dy, dx = (np.floor(draws[:2, i] * 5)).astype(int)
        expected = padded[i, dy : dy + 5, dx : dx + 7]
        if draws[2, i] < 0.5:
            expected = expected[:, ::-1]
        np.testing.assert_array_equal(got[i], expected)  # pure data movement: exact


def test_backup_without_strategy_resumes_after_the_last_finished_epoch(tmp_path):
    import keras

    epochs_run = []

    class Preempted(Exception):
        pass

    class Stop(keras.callbacks.Callback):
        def __init__(self, at):
            super().__init__()
            self.at = at

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.at:
                raise Preempted
            epochs_run.append(epoch)

    kwargs = {"epochs": 2, "batch_size": 8, "verbose": False, "backup_dir": tmp_path / "b"}
    with pytest.raises(Preempted):
        models.train(_tiny_model(), _tiny_dataset(), callbacks=[Stop(at=1)], **kwargs)
    assert epochs_run == [0] and (tmp_path / "b" / "latest.weights.h5").is_file()
    result = models.train(
        _tiny_model(), _tiny_dataset(), callbacks=[Stop(at=None)], out=tmp_path / "m", **kwargs
    )
    assert epochs_run == [0, 1]
    assert len(result.history["loss"]) == 1
    assert models.load_sidecar(result.path)["initial_epoch"] == 1
    assert not (tmp_path / "b").exists()


TF_CONFIGS = [
    (None, "needs the TF_CONFIG environment variable"),
    ("{cluster", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG must have a 'cluster' object"),
    ('{"cluster": {"worker": []}, "task": {}}', "needs a non-empty 'worker' list"),
    ('{"cluster": {"worker": ["host1"]}}', r"'worker' must be a list of 'host:port' strings"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}}', r"cluster has \['ps'\]"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "TF_CONFIG task must be"),
    (
        '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
        "task index 2 is out of range for the 2 'worker' address",
    ),
]


@pytest.mark.parametrize(("value", "message"), TF_CONFIGS)
def test_multiworker_needs_a_valid_tf_config(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match=message):
        models.train(_tiny_model(), _tiny_dataset(), epochs=1, strategy="multiworker")


def test_good_tf_config_is_accepted():
    text = '{"cluster": {"chief": ["a:1"], "worker": ["[::1]:2", "b.example:3"]}, "task": {"type": "worker", "index": 1}}'
    assert distribute.check_tf_config(text)["task"] == {"type": "worker", "index": 1}


def test_bad_strategies_are_named():
    import tensorflow as tf

    with pytest.raises(ValueError, match=r"one of \('mirrored', 'multiworker'\).*got 'mirror'"):
        models.train(_tiny_model(), _tiny_dataset(), epochs=1, strategy="mirror")
    with pytest.raises(ValueError, match="got 2"):
        models.train(_tiny_model(), _tiny_dataset(), epochs=1, strategy=2)
    # A stock MultiWorkerMirroredStrategy cannot drive Keras 3's fit (keras-team/keras#20585);
    # only the class matters for this check, so the instance is left uninitialised.
    stock = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    with pytest.raises(ValueError, match=r"strategy=.multiworker. or a models\.distribute"):
        distribute.resolve_strategy(stock)


def test_cli_strategy_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from vizkit.cli import main

    base = ["train", "lenet5", "--dataset", "digits", "--out", str(tmp_path / "m")]
    assert main([*base, "--strategy", "gpu"]) == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main([*base, "--strategy", "multiworker"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vizkit train: error: strategy='multiworker' needs the TF_CONFIG")
    assert len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))  # all bound at once, so the ports differ
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Jobs:
    """The distributed runs, in processes started together and waited for when a test needs one.

    Groups of processes that depend on each other (the two workers of a cluster) are waited for
    together: once one fails or the deadline passes, the others of its group are killed.
    """

    def __init__(self, folder: Path) -> None:
        self.folder, self.deadline = folder, time.monotonic() + DEADLINE
        self.processes: dict[str, tuple[subprocess.Popen, Path]] = {}
        self.groups: dict[str, tuple[str, ...]] = {}

    def start(self, name: str, spec: dict, group: str | None = None, **env) -> None:
        spec_path = self.folder / f"{name}.spec.json"
        spec_path.write_text(json.dumps({**spec, "result": str(self.folder / name)}))
        log = self.folder / f"{name}.log"
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)]),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **env,
        }
        if "TF_CONFIG" not in env:  # a TF_CONFIG of the caller's own must not leak into the job
            environment.pop("TF_CONFIG", None)
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, str(HERE / "distribute_job.py"), str(spec_path)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes[name] = (process, log)
        self.groups[name] = (*self.groups.get(group or name, ()), name)
        for member in self.groups[name]:
            self.groups[member] = self.groups[name]

    def result(self, name: str, run: str) -> tuple[dict, list[np.ndarray] | None]:
        """The info and weights that run ``run`` of process ``name`` wrote."""
        self._wait(self.groups[name])
        process, log = self.processes[name]
        if process.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
            pytest.fail(f"process {name} ended with exit code {process.returncode}:\n{tail}")
        info = json.loads((self.folder / name / f"{run}.json").read_text())
        weights = self.folder / name / f"{run}.npz"
        if not weights.exists():
            return info, None
        with np.load(weights) as archive:
            return info, [archive[f"arr_{i}"] for i in range(len(archive.files))]

    def kill(self, names=None) -> None:
        for name in names or self.processes:
            process = self.processes[name][0]
            if process.poll() is None:
                process.kill()
            process.wait()

    def _wait(self, names: tuple[str, ...]) -> None:
        group = [self.processes[n][0] for n in names]
        while any(p.poll() is None for p in group):
            if any(p.poll() not in (None, 0) for p in group) or time.monotonic() > self.deadline:
                break
            time.sleep(0.2)
        self.kill(names)


@pytest.fixture(scope="module", autouse=True)
def _start_early(request):
    """Start the distributed runs first if any selected test needs them: the tests of this
    process then run while they work."""
    module = request.node
    if any(
        item.module is module.obj and "jobs" in item.fixturenames for item in request.session.items
    ):
        request.getfixturevalue("jobs")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Every distributed run, started together (see :class:`Jobs`)."""
    folder = tmp_path_factory.mktemp("distribute")
    started = Jobs(folder)
    backup = str(folder / "backup")
    # One process with two logical CPU devices; two worker processes of one cluster.
    started.start(
        "local",
        {
            "devices": 2,
            "runs": [
                {"name": "one", "strategy": "one"},
                {"name": "mirrored", "strategy": "mirrored", "kwargs": {"out": str(folder / "m")}},
                {"name": "odd", "strategy": "mirrored", "kwargs": {"batch_size": 33}},
                {"name": "cut", "strategy": "mirrored", "interrupt_at": 1, "kwargs": {"backup_dir": backup}},
                {"name": "resumed", "strategy": "mirrored", "kwargs": {"backup_dir": backup}},
                {
                    "name": "cli",
                    "strategy": "mirrored",
                    "cli": ["train", "lenet5", "--dataset", "mnist5k", "--epochs", "1",
                            "--batch-size", "32", "--max-train", "64", "--strategy", "mirrored",
                            "--out", str(folder / "cli_model")],
                },
            ],
        },
    )  # fmt: skip
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    for index in range(2):
        tmp = folder / f"tmp{index}"
        tmp.mkdir()
        run = {"name": "mw", "strategy": "multiworker", "kwargs": {"out": str(folder / "shared" / "model")}}  # fmt: skip
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        started.start(
            f"worker{index}",
            {"runs": [run]},
            group="cluster",
            TF_CONFIG=json.dumps(config),
            TMPDIR=str(tmp),
        )
    yield started
    started.kill()


def _assert_same_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=0, atol=ATOL)


def _initial_weights() -> list[np.ndarray]:
    return [w.numpy() for w in tiny_cnn().weights]


# -- distributed runs (fresh processes) -----------------------------------------------------------
@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_one_device(jobs):
    one_info, one = jobs.result("local", "one")
    info, mirrored = jobs.result("local", "mirrored")
    moved = max(float(np.abs(w - w0).max()) for w, w0 in zip(one, _initial_weights(), strict=True))
    assert moved > 0.1, "training barely moved the weights: the comparison would prove nothing"
    _assert_same_weights(mirrored, one)
    losses = info["history"]["loss"]
    assert losses[-1] < losses[0] - 0.05
    np.testing.assert_allclose(losses, one_info["history"]["loss"], rtol=1e-5)
    sidecar = models.load_sidecar(info["path"])
    assert (sidecar["strategy"], sidecar["replicas"], sidecar["workers"]) == ("mirrored", 2, 1)
    assert sidecar["initial_epoch"] == 0
    assert not Path(info["path"]).with_suffix(".backup").exists()  # default backup, removed
    # The model given was cloned into the strategy scope; the caller's instance is untouched.
    assert info["caller_model_unchanged"] and not info["result_is_caller_model"]


@pytest.mark.slow
def test_multiworker_processes_match_one_device_and_only_the_chief_writes(jobs):
    _, one = jobs.result("local", "one")
    chief, chief_weights = jobs.result("worker0", "mw")
    other, other_weights = jobs.result("worker1", "mw")
    _assert_same_weights(chief_weights, one)
    _assert_same_weights(other_weights, one)
    folder = Path(chief["path"]).parent
    assert other["path"] is None
    # Only the chief's model and sidecar: no second copy, no worker temp files, no backups left.
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.keras"]
    sidecar = models.load_sidecar(chief["path"])
    assert (sidecar["strategy"], sidecar["replicas"], sidecar["workers"]) == ("multiworker", 2, 2)
    saved = models.load_model(chief["path"])
    for stored, trained in zip(saved.weights, chief_weights, strict=True):
        np.testing.assert_array_equal(stored.numpy(), trained)  # a file round trip: exact
    for index in range(2):  # the non-chief saved into a temporary folder and removed it
        assert list((jobs.folder / f"tmp{index}").iterdir()) == []


@pytest.mark.slow
def test_backup_and_restore_resumes_after_the_last_finished_epoch(jobs):
    cut, _ = jobs.result("local", "cut")
    resumed, weights = jobs.result("local", "resumed")
    uninterrupted, expected = jobs.result("local", "mirrored")
    assert cut["epochs_run"] == [0]
    assert cut["backup_files"] == ["latest.weights.h5", "training_metadata.json"]
    assert resumed["epochs_run"] == [1]  # epoch 0 was not run again
    np.testing.assert_allclose(
        resumed["history"]["loss"], uninterrupted["history"]["loss"][1:], rtol=1e-5
    )
    _assert_same_weights(weights, expected)
    assert not resumed["backup_left"]


@pytest.mark.slow
def test_global_batch_must_split_equally_across_replicas(jobs):
    info, _ = jobs.result("local", "odd")
    assert info["error"] == (
        "batch_size is the global batch, split equally across the 2 replicas of the strategy, "
        "so it must be a multiple of 2; got 33 (use 32 or 34)"
    )


@pytest.mark.slow
def test_cli_train_with_mirrored_strategy(jobs):
    info, _ = jobs.result("local", "cli")
    assert info["exit"] == 0
    sidecar = models.load_sidecar(jobs.folder / "cli_model.keras")
    assert (sidecar["architecture"], sidecar["strategy"], sidecar["replicas"]) == (
        "lenet5",
        "mirrored",
        2,
    )
