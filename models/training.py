"""Train a classifier on a :class:`~models.datasets.Dataset`, save it safely, load it back.

Saved models are a ``<out>.keras`` archive plus a ``<out>.json`` sidecar describing how the model
was made (architecture, data source, epochs, accuracy, history, library versions). Files are
written atomically (a temporary file in the same folder, then ``os.replace``) and never overwrite
an existing file unless asked to.

With ``strategy=`` the model is trained under ``tf.distribute`` (several GPUs of one host, or
several hosts configured by ``TF_CONFIG``); :mod:`models.distribute` holds that part.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from vizkit.core.files import atomic_path, atomic_write
from vizkit.core.jsonutil import jsonable

from . import distribute
from .datasets import Dataset, load_dataset

__all__ = ["TrainResult", "load_model", "load_sidecar", "save_model", "train"]

AUGMENTATIONS = ("shift", "flip", "shift+flip")
SCHEDULES = ("constant", "cosine")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : keras.Model
        The trained model.
    history : dict of str -> list of float
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
    test_accuracy, test_loss : float
        On the dataset's test split.
    path : Path or None
        The saved ``.keras`` file, when ``out`` was given (None on a multi-worker job's
        non-chief workers, which write nothing).
    seconds : float
        Wall time of fitting plus evaluation.
    """

    model: keras.Model
    history: dict[str, list[float]]
    test_accuracy: float
    test_loss: float
    path: Path | None
    seconds: float


def train(
    model_or_name: keras.Model | str,
    dataset: Dataset | str,
    *,
    epochs: int,
    batch_size: int = 128,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    validation_split: float = 0.1,
    learning_rate: float | None = None,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    schedule: str = "constant",
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    augment: bool | str = False,
    max_train: int | None = None,
    seed: int = 0,
    verbose: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    strategy=None,
    backup_dir: str | os.PathLike | None = None,
) -> TrainResult:
    """Fit a classifier with cross-entropy, evaluate it on the test split, optionally save it.

    Parameters
    ----------
    model_or_name : keras.Model or str
        A model ending in a softmax (or in logits: then the loss uses ``from_logits``), or a
        registered architecture name, built for the dataset's image shape and class count.
    dataset : Dataset or str
        A dataset or a name for :func:`models.load_dataset`.
    epochs, batch_size : int
    out : path-like, optional
        Save to ``<out>.keras`` and ``<out>.json`` (a trailing ``.keras`` in ``out`` is allowed).
    overwrite : bool
        Replace existing files; otherwise a ``FileExistsError`` is raised before training starts.
    validation_split : float in [0, 1)
        Share of the (shuffled) training images held out for ``val_*`` metrics.
    learning_rate : float, optional
        Optimizer learning rate (the optimizer's default when None).
    optimizer : str or keras.optimizers.Optimizer
        ``"adam"``, ``"sgd"``, ``"rmsprop"``, ... or an instance (e.g. SGD with momentum).
    schedule : {"constant", "cosine"}
        ``"cosine"``: a linear warm-up over the first epoch (at most 10% of the steps) to the
        learning rate, then cosine decay to zero at the last step (Loshchilov & Hutter, 2017).
    weight_decay : float >= 0
        Decoupled weight decay for a named optimizer (set it on an instance yourself).
    label_smoothing : float in [0, 1)
        Mixes the one-hot targets with the uniform distribution (Szegedy et al. 2016, Inception V3).
    augment : bool or {"shift", "flip", "shift+flip"}
        Random shifts of up to 1/12 of the image size, zero filled (2 pixels on 28x28;
        ``True`` = ``"shift"``), and/or random left-right flips (for clothes or photos, not
        digits).
    max_train : int, optional
        Train on a seeded random subset of this many images.
    seed : int
        Seeds Keras/NumPy/Python (weights, shuffling, subset, split, augmentation).
    verbose : bool
        A tqdm progress bar per epoch.
    callbacks : list of keras.callbacks.Callback, optional
        Extra callbacks for ``model.fit``.
    strategy : None, {"mirrored", "multiworker"} or tf.distribute.Strategy
        Train under ``tf.distribute``: ``"mirrored"`` uses every local GPU (or the logical CPU
        devices), ``"multiworker"`` the hosts listed in the ``TF_CONFIG`` environment variable
        (run the same call on every worker; see :func:`models.distribute.check_tf_config`).
        The model is built and compiled inside ``strategy.scope()`` (a model instance is cloned
        there with its weights, an optimizer instance is re-made there from its config; the
        result holds the copies). ``batch_size`` is then the GLOBAL
        batch, split equally across the replicas, and the input is a ``tf.data`` pipeline whose
        shuffling and augmentation depend only on ``(seed, epoch)``
        (:class:`models.distribute.EpochPipeline`). In multi-worker training only the chief
        (task 0) writes ``out``; the other workers return ``path=None``. None: plain
        ``model.fit`` on one device.
    backup_dir : path-like, optional
        Folder for ``keras.callbacks.BackupAndRestore``: the weights, optimizer state and epoch
        are saved there after each epoch, and a job restarted with the same arguments resumes
        after the last finished epoch (its ``history`` then holds only the epochs it ran). The
        folder is deleted when training completes. Default with a strategy and ``out``:
        ``<out>.backup`` beside the model file; without a strategy: no backup.

    Returns
    -------
    TrainResult
    """
    _check_train_args(epochs, batch_size, validation_split, label_smoothing, augment, max_train)
    _check_optimizer_args(optimizer, schedule, weight_decay)
    # Before any TensorFlow op: a multi-worker strategy configures collective ops at start-up.
    distributed = distribute.resolve_strategy(strategy)
    cluster = distribute.cluster_of(distributed)
    if distributed is not None:
        distribute.check_global_batch(batch_size, distributed)
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if not isinstance(data, Dataset):
        raise TypeError(f"dataset must be a Dataset or a name, got {type(dataset).__name__}")
    if len(data.x_train) == 0 or len(data.x_train) != len(data.y_train):
        raise ValueError(
            f"dataset {data.name!r} is empty or inconsistent: x_train has shape "
            f"{data.x_train.shape} and y_train {data.y_train.shape}; training needs at least one "
            "image and one label per image"
        )
    paths = None if out is None else _output_paths(out)
    if paths is not None and not overwrite and cluster.chief:
        _refuse_existing(paths)
    backup = _backup_dir(backup_dir, paths, distributed, cluster)
    keras.utils.set_random_seed(seed)
    train_idx, val_idx = _split(len(data.x_train), max_train, validation_split, seed)
    n_val = len(val_idx)
    smoothing = float(label_smoothing)
    if distributed is None:
        per_epoch = -(-len(train_idx) // int(batch_size))
    else:
        replicas = int(distributed.num_replicas_in_sync)
        used = distribute.images_per_epoch(len(train_idx), int(batch_size), replicas)
        per_epoch = -(-used // int(batch_size))
    # Under a strategy, variables (weights, optimizer slots, metrics) must be created in its scope.
    with distributed.scope() if distributed is not None else contextlib.nullcontext():
        model = _resolve_model(model_or_name, data)
        if distributed is not None and not isinstance(model_or_name, str):
            model = _clone_in_scope(model)
        if distributed is not None and isinstance(optimizer, keras.optimizers.Optimizer):
            # An optimizer made outside the scope holds variables of the default strategy.
            optimizer = type(optimizer).from_config(optimizer.get_config())
        model.compile(
            optimizer=_optimizer(
                optimizer, learning_rate, schedule, weight_decay, (per_epoch, int(epochs))
            ),
            loss=_loss(model, smoothing),
            metrics=[_accuracy(smoothing)],
        )
    target = _targets(data.num_classes, smoothing)
    x, y = data.x_train[train_idx], target(data.y_train[train_idx])
    val = (data.x_train[val_idx], target(data.y_train[val_idx])) if n_val else None
    test = (data.x_test, target(data.y_test))
    progress = TqdmProgress(epochs, disable=not (verbose and cluster.chief))
    extra = [progress]
    if distributed is None:
        fit_args, fit_options = _fit_inputs(x, y, int(batch_size), augment, seed)
        eval_args = {"x": test[0], "y": test[1], "batch_size": max(batch_size, 256)}
    else:
        pipeline, val, test_data = _distributed_inputs(
            x, y, val, test, int(batch_size), augment, seed, replicas
        )
        fit_args, fit_options = (pipeline.dataset,), {"shuffle": False}
        extra.append(pipeline)
        eval_args = {"x": test_data}
    if backup is not None:
        extra.append(keras.callbacks.BackupAndRestore(str(backup)))

    start = time.perf_counter()
    fitted = model.fit(
        *fit_args,
        **fit_options,
        validation_data=val,
        epochs=int(epochs),
        verbose=0,
        callbacks=[*extra, *(callbacks or ())],
    )
    scores = model.evaluate(**eval_args, verbose=0, return_dict=True)
    seconds = time.perf_counter() - start
    if backup is not None and cluster.workers > 1:
        with contextlib.suppress(OSError):  # the workers' shared parent folder, once empty
            backup.parent.rmdir()
    history = {k: [float(v) for v in vals] for k, vals in fitted.history.items()}
    result = TrainResult(
        model, history, float(scores["accuracy"]), float(scores["loss"]), None, seconds
    )
    if verbose:
        progress.write(f"test accuracy {result.test_accuracy:.4f}, loss {result.test_loss:.4f}")
    if paths is not None:
        settings = {
            "epochs": int(epochs),
            "batch_size": int(batch_size),
            "validation_split": validation_split,
            "learning_rate": learning_rate,
            "optimizer": _name_of(optimizer),
            "schedule": schedule,
            "weight_decay": weight_decay,
            "label_smoothing": smoothing,
            "augment": augment,
            "max_train": max_train,
            "seed": seed,
            "n_train": len(train_idx),
            "n_val": n_val,
            "strategy": distribute.strategy_name(strategy),
            "replicas": int(distributed.num_replicas_in_sync) if distributed is not None else 1,
            "workers": cluster.workers,
            "initial_epoch": progress.first_epoch,
        }
        if cluster.chief:
            meta = _sidecar(model_or_name, model, data, result, settings)
            result.path = save_model(model, paths[0], overwrite=overwrite, metadata=meta)
        else:
            _save_elsewhere(model)
    return result


def save_model(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    metadata: dict | None = None,
) -> Path:
    """Save ``model`` to ``path`` (``.keras`` added if missing), atomically.

    With ``metadata``, a JSON sidecar with the same stem is written too.

    Raises
    ------
    FileExistsError
        When the model file or its sidecar exists and ``overwrite`` is False.
    """
    model_path, json_path = _output_paths(path)
    if not overwrite:
        _refuse_existing((model_path, json_path) if metadata is not None else (model_path,))
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    if metadata is not None:
        atomic_write(json_path, json.dumps(metadata, indent=2, default=jsonable) + "\n")
    return model_path


def load_model(
    path: str | os.PathLike, *, safe_mode: bool = True, compile: bool = False
) -> keras.Model:
    """Load a ``.keras`` model file (legacy ``.h5`` too), with readable errors.

    Parameters
    ----------
    path : path-like
    safe_mode : bool
        Keras' safe mode: refuses ``Lambda`` layers, whose saved Python code would run on
        loading. Pass False only for files you trust.
    compile : bool
        Restore the training configuration (optimizer, loss) as well.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Wrong extension, a corrupt/truncated archive, a file that holds no model, or a Lambda
        layer in safe mode.
    """
    from . import custom_layers  # noqa: F401  (registers the zoo's custom layers with Keras)

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    if path.is_dir() or path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ValueError(
            f"{str(path)!r} is not a model file: expected a '.keras' archive (or legacy '.h5')"
        )
    if path.suffix.lower() == ".keras":
        _check_archive(path)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
    except Exception as exc:
        if safe_mode and "safe_mode" in str(exc):
            raise ValueError(
                f"{str(path)!r} contains a Lambda layer (stored Python code). Keras' safe mode "
                "refuses to load it because loading would run that code. If you trust the file, "
                "call load_model(path, safe_mode=False)."
            ) from exc
        raise ValueError(
            f"cannot load a model from {str(path)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, keras.Model):
        raise ValueError(f"{str(path)!r} holds a {type(model).__name__}, not a keras.Model")
    return model


def load_sidecar(path: str | os.PathLike) -> dict | None:
    """The JSON sidecar of a saved model (``<stem>.json`` beside ``<stem>.keras``), or None."""
    _, json_path = _output_paths(path)
    if not json_path.is_file():
        return None
    try:
        return json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"sidecar {str(json_path)!r} is not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------------------------


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar per epoch, advancing per batch, with loss and accuracy as postfix."""

    def __init__(self, epochs: int, *, disable: bool) -> None:
        super().__init__()
        self.epochs, self.disable, self.bar = epochs, disable, None
        self.first_epoch: int | None = None  # > 0 when a backup resumed the job

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm.auto import tqdm

        if self.first_epoch is None:
            self.first_epoch = int(epoch)

        total = (self.params or {}).get("steps")
        desc = f"epoch {epoch + 1}/{self.epochs}"
        self.bar = tqdm(total=total, desc=desc, unit="batch", disable=self.disable, leave=True)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if batch % 20 == 0 and logs:
            self.bar.set_postfix(_short(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            self.bar.set_postfix(_short(logs))
        self.bar.close()

    def write(self, text: str) -> None:
        from tqdm.auto import tqdm

        if not self.disable:
            tqdm.write(text)


def _short(logs: dict) -> dict:
    return {k.replace("accuracy", "acc"): f"{float(v):.4f}" for k, v in logs.items()}


class ShiftedBatches(keras.utils.PyDataset):
    """Shuffled batches with optional random shifts (zero fill) and left-right flips."""

    def __init__(self, x, y, batch_size: int, *, shift: bool, flip: bool, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.flip = x, y, batch_size, flip
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))
        self.max_shift = max(1, min(x.shape[1:3]) // 12) if shift else 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = self.x[rows].copy()
        if self.max_shift:
            batch = _shift(batch, self.rng, self.max_shift)
        if self.flip:
            mirror = self.rng.random(len(batch)) < 0.5
            batch[mirror] = batch[mirror, :, ::-1]
        return batch, self.y[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.x))


def _shift(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    n, h, w, _ = images.shape
    s = max_shift
    padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + np.arange(w)[None, :]  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _fit_inputs(x, y, batch_size, augment, seed) -> tuple[tuple, dict]:
    """Positional and keyword arguments of ``model.fit`` for the training data."""
    if not augment:
        return (x, y), {"batch_size": batch_size, "shuffle": True}
    shift, flip = _augmentations(augment)
    return (ShiftedBatches(x, y, batch_size, shift=shift, flip=flip, seed=seed),), {}


def _augmentations(augment) -> tuple[bool, bool]:
    return augment in (True, "shift", "shift+flip"), augment in ("flip", "shift+flip")


def _distributed_inputs(x, y, val, test, batch_size, augment, seed, replicas) -> tuple:
    """Training pipeline, validation and test datasets under a strategy.

    The augmentations are those of ShiftedBatches. Keras builds the model from the first batch
    of each dataset, which must give every replica at least one image.
    """
    for what, split in (("validation", val), ("test", test)):
        if split is not None and 0 < len(split[0]) < replicas:
            raise ValueError(
                f"the {what} split has {len(split[0])} image(s), fewer than the {replicas} "
                "replicas of the strategy; use a larger split (or validation_split=0)"
            )
    shift, flip = _augmentations(augment)
    max_shift = max(1, min(x.shape[1:3]) // 12) if shift else 0
    pipeline = distribute.EpochPipeline(
        x, y, batch_size, seed=seed, max_shift=max_shift, flip=flip, replicas=replicas
    )
    val = None if val is None else distribute.evaluation_dataset(*val, batch_size)
    eval_batch = max(batch_size, 256 // batch_size * batch_size)
    return pipeline, val, distribute.evaluation_dataset(*test, eval_batch)


def _clone_in_scope(model: keras.Model) -> keras.Model:
    """``model`` rebuilt in the current strategy scope (mirrored variables), same weights."""
    try:
        clone = keras.models.clone_model(model)
    except Exception as exc:
        raise ValueError(
            f"model {model.name!r} cannot be rebuilt inside the strategy scope "
            f"({type(exc).__name__}: {exc}); pass a registered name, or a functional/Sequential "
            "model"
        ) from exc
    clone.set_weights(model.get_weights())
    return clone


def _backup_dir(backup_dir, paths, strategy, cluster: distribute.Cluster) -> Path | None:
    """This worker's BackupAndRestore folder (each worker of a cluster gets its own)."""
    if backup_dir is None:
        if strategy is None or paths is None:
            return None
        backup_dir = paths[0].with_suffix(".backup")
    folder = Path(backup_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"backup_dir {str(folder)!r} exists and is not a folder")
    if cluster.workers > 1:
        folder = folder / f"{cluster.task_type}-{cluster.task_index}"
    return folder


def _save_elsewhere(model: keras.Model) -> None:
    # A non-chief worker saves too, into a folder it then deletes, as TensorFlow's multi-worker
    # guide asks: saving may read variables through collective ops that every worker must join.
    folder = tempfile.mkdtemp(prefix="vizkit-worker-")
    try:
        model.save(os.path.join(folder, "model.keras"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _split(n: int, max_train: int | None, validation_split: float, seed: int) -> tuple:
    """Seeded (train, validation) indices, after keeping a random ``max_train`` of ``n``."""
    order = np.random.default_rng(seed).permutation(n)[: max_train or None]
    n_val = round(validation_split * len(order))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_train_args(epochs, batch_size, validation_split, label_smoothing, augment, max_train):
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if augment not in (False, True, *AUGMENTATIONS):
        raise ValueError(f"augment must be a bool or one of {AUGMENTATIONS}, got {augment!r}")
    if max_train is not None and int(max_train) < 1:
        raise ValueError(f"max_train must be None or >= 1, got {max_train!r}")


def _resolve_model(model_or_name, data: Dataset) -> keras.Model:
    if isinstance(model_or_name, str):
        from .registry import create_model

        return create_model(model_or_name, data.input_shape, data.num_classes)
    if not isinstance(model_or_name, keras.Model):
        raise TypeError(
            f"model_or_name must be a keras.Model or a registered name, "
            f"got {type(model_or_name).__name__}"
        )
    expected = tuple(model_or_name.input_shape[1:])
    if len(expected) != 3 or any(
        e not in (None, d) for e, d in zip(expected, data.input_shape, strict=True)
    ):
        raise ValueError(
            f"model input shape {expected} does not fit dataset {data.name!r} images "
            f"{data.input_shape}"
        )
    units = model_or_name.output_shape[-1]
    if units != data.num_classes:
        raise ValueError(
            f"model has {units} outputs but dataset {data.name!r} has {data.num_classes} classes"
        )
    return model_or_name


def _ends_in_softmax(model: keras.Model) -> bool:
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(getattr(last, "activation", None), "__name__", None) == "softmax"


def _loss(model: keras.Model, smoothing: float) -> keras.losses.Loss:
    logits = not _ends_in_softmax(model)
    if smoothing:
        return keras.losses.CategoricalCrossentropy(from_logits=logits, label_smoothing=smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)


def _accuracy(smoothing: float) -> keras.metrics.Metric:
    if smoothing:
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def _targets(num_classes: int, smoothing: float) -> Callable[[np.ndarray], np.ndarray]:
    if smoothing:
        return lambda y: np.eye(num_classes, dtype=np.float32)[y]
    return lambda y: np.asarray(y)


def _optimizer(optimizer, learning_rate, schedule, weight_decay, steps: tuple[int, int]):
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        config = {} if weight_decay == 0 else {"weight_decay": float(weight_decay)}
        try:
            optimizer = keras.optimizers.get({"class_name": str(optimizer), "config": config})
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; use a Keras optimizer name such as 'adam', "
                "'sgd', 'rmsprop' or an instance"
            ) from exc
    # convert_to_numpy reads a MirroredVariable too (float() does not).
    current = optimizer.learning_rate
    rate = float(keras.ops.convert_to_numpy(current)) if learning_rate is None else learning_rate
    rate = float(rate)
    if schedule == "cosine":
        per_epoch, epochs = steps
        total = per_epoch * epochs
        warmup = min(per_epoch, total // 10)
        optimizer.learning_rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate,
            max(1, total - warmup),
            warmup_target=rate if warmup else None,
            warmup_steps=warmup,
        )
    elif learning_rate is not None:
        optimizer.learning_rate = rate
    return optimizer


def _check_optimizer_args(optimizer, schedule, weight_decay) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if weight_decay and isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "weight_decay applies to a named optimizer; for an optimizer instance pass "
            "weight_decay to its constructor"
        )


def _name_of(optimizer) -> str:
    return optimizer if isinstance(optimizer, str) else type(optimizer).__name__


def _sidecar(model_or_name, model, data: Dataset, result: TrainResult, settings: dict) -> dict:
    import tensorflow as tf

    architecture = model_or_name if isinstance(model_or_name, str) else model.name
    return {
        "architecture": architecture,
        "model_name": model.name,
        "dataset": data.name,
        "dataset_source": data.source,
        "input_shape": list(data.input_shape),
        "class_names": list(data.class_names),
        **settings,
        "n_test": len(data.x_test),
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "history": result.history,
        "seconds": round(result.seconds, 2),
        "params": int(model.count_params()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }


def _output_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    out = Path(out).expanduser()
    stem = out.with_suffix("") if out.suffix.lower() in (".keras", ".json") else out
    return Path(f"{stem}.keras"), Path(f"{stem}.json")


def _refuse_existing(paths) -> None:
    for path in paths:
        if path.exists():
            raise FileExistsError(
                f"{str(path)!r} already exists; pass overwrite=True to replace it or choose "
                "another out="
            )


def _check_archive(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{str(path)!r} is not a valid .keras archive (not a zip file: corrupt, truncated or "
            "not a model)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{str(path)!r} is a corrupt .keras archive: {exc}") from exc
    if "config.json" not in names:
        raise ValueError(f"{str(path)!r} is a zip file but not a Keras model (no config.json)")
    if bad is not None:
        raise ValueError(f"{str(path)!r} is corrupt: member {bad!r} fails its CRC check")
