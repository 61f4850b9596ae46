"""Training past one device with ``tf.distribute``: strategies, ``TF_CONFIG`` and the input pipeline.

:func:`models.train` uses this module when it is given ``strategy=``:

- ``"mirrored"``: :class:`tf.distribute.MirroredStrategy` over every local GPU, or over the
  logical CPU devices when there is no GPU (one replica unless the program split the CPU with
  ``tf.config.set_logical_device_configuration``).
- ``"multiworker"``: :class:`MultiWorkerMirrored`, a :class:`tf.distribute.MultiWorkerMirroredStrategy`
  configured by the ``TF_CONFIG`` environment variable as TensorFlow documents it
  (https://www.tensorflow.org/guide/distributed_training#setting_up_the_tf_config_environment_variable).
- any :class:`tf.distribute.Strategy` instance.

The input pipeline (:class:`EpochPipeline`) is a ``tf.data.Dataset`` of GLOBAL batches: every
worker computes the same stream of batches and ``tf.distribute`` splits each one across the
replicas (``AutoShardPolicy.DATA``). The order of the images and their augmentation are pure
functions of ``(seed, epoch, batch)``, so one device, several replicas, several workers and a job
resumed from a backup all see the same batches.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import keras
import tensorflow as tf

__all__ = [
    "STRATEGIES",
    "TF_CONFIG_EXAMPLE",
    "Cluster",
    "EpochPipeline",
    "MultiWorkerMirrored",
    "augment",
    "check_global_batch",
    "check_strategy",
    "check_tf_config",
    "cluster_of",
    "evaluation_dataset",
    "images_per_epoch",
    "resolve_strategy",
    "strategy_name",
]

STRATEGIES = ("mirrored", "multiworker")
TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
    '"index": 0}}'
)
_TASK_TYPES = ("chief", "worker")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
# One strategy per process and device set: TensorFlow configures multi-worker collective ops
# once, and numbers the collective ops of each strategy object from the same start.
_MULTIWORKER: dict[str, MultiWorkerMirrored] = {}
_MIRRORED: dict[tuple[str, ...], tf.distribute.MirroredStrategy] = {}


class MultiWorkerMirrored(tf.distribute.MultiWorkerMirroredStrategy):
    """:class:`tf.distribute.MultiWorkerMirroredStrategy` whose ``reduce`` Keras 3 can call.

    ``keras.Model.fit`` (Keras 3.x, TensorFlow backend) calls ``strategy.reduce`` on a nested
    ``(x, y)`` batch and with ``axis=0`` on scalar per-replica logs; the stock multi-worker
    strategy rejects both (keras-team/keras#20585). This subclass reduces each leaf of a nested
    value and treats ``axis`` on a scalar as no axis, which is what ``MirroredStrategy`` does.
    """

    def reduce(self, reduce_op, value, axis):
        def one(leaf):
            local = self.experimental_local_results(leaf)[0]
            rank = getattr(getattr(local, "shape", None), "rank", None)
            return super(MultiWorkerMirrored, self).reduce(
                reduce_op, leaf, None if rank == 0 else axis
            )

        return tf.nest.map_structure(one, value)


@dataclass(frozen=True)
class Cluster:
    """Where this process stands in a (possibly one-process) training cluster.

    Attributes
    ----------
    workers : int
        Number of worker processes (1 without ``TF_CONFIG``).
    task_type : str or None
        ``"chief"`` or ``"worker"`` in a multi-worker cluster, else None.
    task_index : int
    chief : bool
        True for the one process that writes the model file and the sidecar.
    """

    workers: int = 1
    task_type: str | None = None
    task_index: int = 0
    chief: bool = True


def check_strategy(strategy) -> None:
    """Check ``strategy`` without creating anything (and, for names, without running TensorFlow).

    Raises
    ------
    ValueError
        An unknown name, or ``"multiworker"`` without a valid ``TF_CONFIG``.
    """
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(
            f"strategy must be None, one of {STRATEGIES} or a tf.distribute.Strategy, "
            f"got {strategy!r}"
        )
    if strategy == "multiworker":
        check_tf_config()


def resolve_strategy(strategy) -> tf.distribute.Strategy | None:
    """A :class:`tf.distribute.Strategy` from a name (see :data:`STRATEGIES`) or an instance.

    ``"multiworker"`` must be resolved before the process runs any TensorFlow op (TensorFlow
    configures collective ops at start-up); the strategy is created once per process and reused.

    Raises
    ------
    ValueError
        Unknown name, bad ``TF_CONFIG``, or a stock ``MultiWorkerMirroredStrategy`` instance.
    RuntimeError
        ``"multiworker"`` requested after TensorFlow already ran.
    """
    check_strategy(strategy)
    if strategy is None:
        return None
    if isinstance(strategy, tf.distribute.Strategy):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and not isinstance(
            strategy, MultiWorkerMirrored
        ):
            raise ValueError(
                f"Keras {keras.__version__} cannot fit with a stock "
                "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585); pass "
                "strategy='multiworker' or a models.distribute.MultiWorkerMirrored instead"
            )
        return strategy
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = tuple(d.name for d in gpus or tf.config.list_logical_devices("CPU"))
        # Reused: two MirroredStrategy objects in one process number their collective ops
        # alike, and TensorFlow then mixes up the all-reduces of different models.
        if devices not in _MIRRORED:
            _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
        return _MIRRORED[devices]
    return _multiworker()


def check_tf_config(text: str | None = None) -> dict:
    """Parse and check a ``TF_CONFIG`` (default: the environment variable) for multi-worker use.

    ``TF_CONFIG`` is JSON with the whole cluster (the same on every worker) and this process's
    task: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker",
    "index": 0}}``; an optional ``"chief": ["host:port"]`` entry names a dedicated chief.

    Returns
    -------
    dict
        The parsed configuration.

    Raises
    ------
    ValueError
        Missing, not JSON, or not of that form; the message says which part is wrong.
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text or not text.strip():
        raise ValueError(
            "strategy='multiworker' needs the TF_CONFIG environment variable, JSON like "
            f"{TF_CONFIG_EXAMPLE} (the same cluster on every worker, each with its own index)"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); expected "
            f"{TF_CONFIG_EXAMPLE}"
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ValueError(f"TF_CONFIG must have a 'cluster' object, e.g. {TF_CONFIG_EXAMPLE}")
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - set(_TASK_TYPES))
    if unknown:
        raise ValueError(
            f"TF_CONFIG cluster has {unknown}; multi-worker training uses only 'worker' and an "
            "optional 'chief' (no parameter servers or evaluators)"
        )
    if not cluster.get("worker") and not cluster.get("chief"):
        raise ValueError(
            f"TF_CONFIG cluster needs a non-empty 'worker' list of 'host:port', e.g. "
            f"{TF_CONFIG_EXAMPLE}"
        )
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and _ADDRESS.match(a) for a in addresses
        ):
            raise ValueError(
                f"TF_CONFIG cluster {kind!r} must be a list of 'host:port' strings, "
                f"got {addresses!r}"
            )
    if len(cluster.get("chief", [])) > 1:
        raise ValueError(f"TF_CONFIG cluster has {len(cluster['chief'])} chiefs; at most 1")
    task = config.get("task")
    kind = task.get("type") if isinstance(task, dict) else None
    index = task.get("index") if isinstance(task, dict) else None
    if kind not in cluster or isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(
            f"TF_CONFIG task must be {{'type': one of {sorted(cluster)}, 'index': int}} naming "
            f"this process in the cluster, got {task!r}"
        )
    if not 0 <= index < len(cluster[kind]):
        raise ValueError(
            f"TF_CONFIG task index {index} is out of range for the {len(cluster[kind])} "
            f"{kind!r} address(es) of the cluster"
        )
    return config


def cluster_of(strategy: tf.distribute.Strategy | None) -> Cluster:
    """The :class:`Cluster` of ``strategy``: worker count, this task, whether it is the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return Cluster()
    spec = resolver.cluster_spec().as_dict()
    kind, index = resolver.task_type, int(resolver.task_id or 0)
    workers = sum(len(spec.get(k, ())) for k in _TASK_TYPES)
    # TensorFlow's rule: the chief is the 'chief' task, or worker 0 when there is none.
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in spec)
    return Cluster(workers, kind, index, chief)


def strategy_name(strategy) -> str | None:
    """``"mirrored"``, ``"multiworker"``, the class name of another strategy, or None."""
    if strategy is None or isinstance(strategy, str):
        return strategy
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if type(strategy) is tf.distribute.MirroredStrategy:
        return "mirrored"
    return type(strategy).__name__


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> None:
    """Refuse a global batch that does not split into equal per-replica batches.

    Keras averages each replica's mean loss, so unequal shares would weight images unequally
    (and no longer match the one-device gradient).
    """
    replicas = int(strategy.num_replicas_in_sync)
    if int(batch_size) % replicas:
        lower = max(replicas, int(batch_size) // replicas * replicas)
        raise ValueError(
            f"batch_size is the global batch, split equally across the {replicas} replicas of "
            f"the strategy, so it must be a multiple of {replicas}; got {batch_size!r} "
            f"(use {lower} or {lower + replicas})"
        )


class EpochPipeline(keras.callbacks.Callback):
    """Shuffled, optionally augmented global batches whose content depends on the epoch number.

    Pass :attr:`dataset` to ``model.fit`` and the pipeline itself as a callback: at the start of
    each epoch it stores the epoch number in a variable that the dataset reads when ``fit``
    opens the epoch's iterator. Epoch ``e`` visits the images in the order
    ``stateless_shuffle(range(n), seed=(seed, e))``; batch ``b`` of epoch ``e`` draws its shifts
    and flips from ``stateless_uniform(seed=(seed, e * steps + b))``. A job resumed at epoch
    ``e`` (``keras.callbacks.BackupAndRestore``) therefore sees exactly the batches the
    uninterrupted job would have seen.

    Parameters
    ----------
    x : ndarray (N, H, W, C) float32
    y : ndarray (N,) or (N, K)
        Integer labels or (smoothed) one-hot targets.
    batch_size : int
        The GLOBAL batch size (all replicas together).
    seed : int
    max_shift : int
        Random shifts of up to this many pixels in each direction, zero filled (0: none).
    flip : bool
        Random left-right flips with probability 1/2.
    replicas : int
        The last batch of an epoch is cut to a multiple of this, so that every replica gets an
        equal, non-empty share (at most ``replicas - 1`` images, different ones each epoch, wait
        for the next epoch).
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        *,
        seed: int,
        max_shift: int = 0,
        flip: bool = False,
        replicas: int = 1,
    ) -> None:
        super().__init__()
        self.batch_size = int(batch_size)
        self.n = images_per_epoch(len(x), self.batch_size, replicas)
        self.steps = -(-self.n // self.batch_size)
        self.max_shift, self.flip = int(max_shift), bool(flip)
        # A plain host variable, created outside any strategy scope: the input pipeline reads it.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="pipeline_epoch")
        self._seed = tf.constant(seed, tf.int64)
        self.dataset = self._build(tf.constant(x), tf.constant(y))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)

    def _build(self, x: tf.Tensor, y: tf.Tensor) -> tf.data.Dataset:
        len_x = int(x.shape[0])

        def one_epoch(_):
            epoch = self.epoch.read_value()
            order = tf.random.experimental.stateless_shuffle(
                tf.range(len_x, dtype=tf.int64), seed=tf.stack([self._seed, epoch])
            )[: self.n]
            batches = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size)
            return batches.enumerate().map(
                lambda b, rows: self._batch(x, y, rows, epoch * self.steps + b)
            )

        dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps))
        return _distributed_by_data(dataset.prefetch(tf.data.AUTOTUNE))

    def _batch(self, x, y, rows, step):
        images = tf.gather(x, rows)
        if self.max_shift or self.flip:
            key = tf.stack([self._seed, step])
            draws = tf.random.stateless_uniform(tf.stack([3, tf.size(rows)]), seed=key)
            images = augment(images, draws, self.max_shift, self.flip)
        return images, tf.gather(y, rows)


def images_per_epoch(n: int, batch_size: int, replicas: int) -> int:
    """How many of ``n`` images an epoch of :class:`EpochPipeline` uses.

    All full global batches, plus the rest cut to a multiple of ``replicas``.

    Raises
    ------
    ValueError
        Fewer images than replicas.
    """
    full = n // int(batch_size) * int(batch_size)
    used = full + (n - full) // int(replicas) * int(replicas)
    if used == 0:
        raise ValueError(
            f"{n} training image(s) cannot be shared by {replicas} replicas; train on at least "
            "one image per replica"
        )
    return used


def augment(images: tf.Tensor, draws: tf.Tensor, max_shift: int, flip: bool) -> tf.Tensor:
    """Shift and/or mirror each image of a batch by amounts read from uniform ``draws``.

    Parameters
    ----------
    images : tf.Tensor (B, H, W, C)
    draws : tf.Tensor (3, B) float32 in [0, 1)
        Row 0 and 1 pick the vertical and horizontal offsets in ``[-max_shift, max_shift]``,
        row 2 < 0.5 mirrors the image left-right (after the shift).
    max_shift : int >= 0
    flip : bool

    Returns
    -------
    tf.Tensor (B, H, W, C)
        Each image translated with zero fill (the same rule as the NumPy augmentation of
        :func:`models.train` without a strategy), then maybe mirrored.
    """
    if max_shift:
        s = int(max_shift)
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        offsets = tf.minimum(tf.cast(draws[:2] * (2 * s + 1), tf.int32), 2 * s)
        padded = tf.pad(images, [[0, 0], [s, s], [s, s], [0, 0]])
        rows = offsets[0][:, None] + tf.range(h)[None, :]  # (B, H) rows of the padded image
        cols = offsets[1][:, None] + tf.range(w)[None, :]  # (B, W)
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
    if flip:
        mirror = draws[2] < 0.5
        images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


def evaluation_dataset(x, y, batch_size: int) -> tf.data.Dataset:
    """Unshuffled global batches of ``(x, y)`` for validation and test under a strategy."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(int(batch_size))
    return _distributed_by_data(dataset.prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------------------------


def _distributed_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    # In-memory arrays have no files to shard: every worker builds the same global batches and
    # keeps its replicas' share of each one.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _multiworker() -> MultiWorkerMirrored:
    key = os.environ["TF_CONFIG"]
    if key in _MULTIWORKER:
        return _MULTIWORKER[key]
    if _MULTIWORKER:
        raise RuntimeError(
            "TF_CONFIG changed after this process created its multi-worker strategy; a process "
            "belongs to one cluster (start a new process for another)"
        )
    try:
        strategy = MultiWorkerMirrored()
    except RuntimeError as exc:
        if "program startup" not in str(exc):
            raise
        raise RuntimeError(
            "strategy='multiworker' must be set up before the process runs any TensorFlow op "
            "(TensorFlow configures collective ops at start-up): call models.train(..., "
            "strategy='multiworker') or models.distribute.resolve_strategy('multiworker') first"
        ) from None
    _MULTIWORKER[key] = strategy
    return strategy
