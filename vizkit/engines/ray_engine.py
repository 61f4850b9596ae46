"""The Ray engine: dataset jobs on Ray Data actors, partial results folded in the driver.

The driver turns the data into a Ray dataset whose rows are whole chunks (see
:mod:`vizkit.engines.chunks`): for an array, one row per chunk holding its images; for a folder
or a list of files, one row per chunk holding the paths, read by the workers; for a
``ray.data.Dataset``, the rows numbered by :func:`ray.data.Dataset.zip` with a range and cut
into blocks of exactly one chunk; for a ``tf.data`` dataset or another iterable, the chunks read
by the driver. ``map_batches`` runs :func:`run_chunks` tasks that declare their CPUs and GPUs
and return one pickled partial result per chunk. Ray reuses its worker processes for later
tasks and jobs, and each process keeps the models it loaded
(:class:`vizkit.engines.model_spec.ModelSpec`: never a pickled live model) keyed by a digest of
architecture and weights, so TensorFlow is imported and a model loaded once per worker process,
not once per job. The driver folds the partials in chunk order, skipping a chunk it has
already counted, and checks that every chunk came back once. A task whose worker dies is run
again by Ray (``max_retries``).

Ray is imported only when a job runs (``pip install "vizkit[ray]"``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import socket
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.checks import positive_int, positive_number
from .chunks import Chunk, chunk_count

INSTALL = 'engine="ray" needs Ray: pip install "vizkit[ray]" (or pip install "ray[data]>=2.9")'
INDEX = "__vizkit_index"
_WORKER_ERROR = re.compile(r"\[vizkit:(\w+)\] ([^\n]*)")
_ERROR_TYPES = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "FileNotFoundError": FileNotFoundError,
    "OSError": OSError,
    "PermissionError": PermissionError,
    "FileExistsError": FileExistsError,
}


def import_ray():
    """The ``ray`` module (with Ray Data), or an ImportError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(f"{INSTALL}; importing it failed: {exc}") from None
    return ray


class RayEngine:
    """Run dataset jobs on a Ray cluster with Ray Data tasks on warm worker processes.

    Parameters
    ----------
    address : str, optional
        The cluster for ``ray.init(address=...)``: ``"auto"`` (the cluster this machine belongs
        to), ``"host:port"`` (the head's GCS port, 6379 by default) or ``"ray://host:port"``
        (Ray Client, port 10001). None starts a local Ray on this machine. When Ray is already
        initialised in this process, that connection is used.
    workers : int, optional
        Number of concurrent workers; default: as many as the cluster's GPUs (one each) or CPUs
        (``num_cpus`` each) allow.
    num_cpus : float
        CPUs each worker reserves (and TensorFlow threads it uses).
    num_gpus : float, optional
        GPUs each worker reserves; default 1 on a cluster with GPUs, else 0.
    max_retries : int
        How often a chunk whose worker died is run again.
    model_source : str, path or callable, optional
        Where workers get the model: None ships the driver's model as a ``.keras`` archive
        (saved once per job); a path to a ``.keras`` file every node can read; or a
        zero-argument function that builds the model on the worker.
    connect_timeout : float
        Seconds to wait for ``address`` to answer before giving up (checked even when Ray is
        already initialised, so that a wrong address is never silently ignored).
    """

    name = "ray"
    #: Seconds from the start of the last run to: the plan being ready (``plan``), the first
    #: worker being ready to compute (``ready``: started, TensorFlow imported, model loaded;
    #: from the workers' wall clocks), the first result in the driver (``first``) and the end
    #: (``total``).
    timings: dict[str, float]

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        *,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        max_retries: int = 3,
        model_source=None,
        connect_timeout: float = 5.0,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(
                f"address must be None, 'auto', 'host:port' or 'ray://host:port', got {address!r}"
            )
        self.address = address
        self.workers = None if workers is None else positive_int(workers, "workers")
        self.num_cpus = positive_number(num_cpus, "num_cpus")
        if num_gpus is not None and not (
            isinstance(num_gpus, (int, float)) and not isinstance(num_gpus, bool) and num_gpus >= 0
        ):
            raise ValueError(f"num_gpus must be None or a number >= 0, got {num_gpus!r}")
        self.num_gpus = num_gpus
        self.max_retries = positive_int(max_retries, "max_retries", minimum=0)
        self.model_source = model_source
        self.connect_timeout = positive_number(connect_timeout, "connect_timeout")
        self.timings = {}

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, workers={self.workers!r})"

    def run(self, job, model, data, *, chunk_size: int, name: str = "data"):
        """``(merged result, number of images)`` of ``job`` over ``data``."""
        from . import ordered, spec_for

        ray = import_ray()
        start, wall = time.perf_counter(), time.time()
        connect(ray, self.address, self.connect_timeout)
        spec = spec_for(model if self.model_source is None else self.model_source)
        if spec.archive is not None:  # one copy in the object store for every worker
            spec = replace(spec, archive=None, archive_ref=ray.put(spec.archive))
        workers, gpus = self._resources(ray)
        with ordered(data), _quiet():
            plan = _plan(ray, data, model, chunk_size, name, blocks=4 * workers)
            if plan.count == 0:
                return None, 0
            clock = {"plan": time.perf_counter() - start}
            with contextlib.suppress(AttributeError):  # our own progress bar instead
                plan.dataset.context.enable_progress_bars = False
            mapped = _map(
                plan.dataset,
                max_retries=self.max_retries,
                batch_size=plan.rows_per_call,
                batch_format="numpy",
                concurrency=workers,
                num_cpus=self.num_cpus,
                num_gpus=gpus,
                fn_kwargs={
                    "spec": spec,
                    "job": job,
                    "reader": plan.reader,
                    "threads": max(1, int(self.num_cpus)),
                },
            )
            try:
                result = collect(mapped.iter_rows(), job, plan.n_chunks, clock=clock, start=start)
            except Exception as exc:
                raise worker_error(exc) from _cause(exc)
            ready = clock.pop("ready_wall", None)
            self.timings = {**clock, "total": time.perf_counter() - start}
            if ready is not None:  # a warm worker was ready before this job began
                self.timings["ready"] = max(0.0, ready - wall)
            return result

    def _resources(self, ray) -> tuple[int, float]:
        total = ray.cluster_resources()
        cpus, gpus_total = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        gpus = self.num_gpus if self.num_gpus is not None else (1.0 if gpus_total >= 1 else 0.0)
        room = int(gpus_total // gpus) if gpus else int(cpus // self.num_cpus)
        workers = self.workers if self.workers is not None else max(1, room)
        if workers * self.num_cpus > cpus or workers * gpus > gpus_total:
            raise ValueError(
                f"workers={workers} with num_cpus={self.num_cpus:g} and num_gpus={gpus:g} each "
                f"need more than the Ray cluster has ({cpus:g} CPUs, {gpus_total:g} GPUs); "
                "ask for fewer workers or add nodes"
            )
        return workers, gpus


def _map(dataset, *, max_retries: int, **options):
    """``dataset.map_batches(run_chunks, ...)`` with a bounded number of retries.

    A task whose worker dies is run again (the driver counts each chunk once). Ray Data retries
    without end by default, so a chunk that kills its worker every time would never finish;
    the task option that bounds it is deprecated in Ray 2.60 (removal announced for 2.64, with
    no named replacement yet): on a Ray that refuses it, Ray's default applies.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dataset.map_batches(run_chunks, **options, max_retries=max_retries)
        except TypeError:
            return dataset.map_batches(run_chunks, **options)


def connect(ray, address: str | None, timeout: float = 5.0) -> None:
    """Initialise Ray unless it already is: ``address`` or a new local Ray.

    Raises
    ------
    ConnectionError
        In one line, when ``address`` does not answer within ``timeout`` seconds or Ray cannot
        join the cluster (``ray.init`` itself would keep retrying for minutes).
    """
    if address is not None:
        _check_reachable(address, timeout)
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(include_dashboard=False, **quiet)
        return
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:
        raise ConnectionError(
            f"cannot join the Ray cluster at address={address!r}: {_first_line(exc)}; start "
            "one with `ray start --head` or pass address=None for a local Ray"
        ) from None


def _check_reachable(address: str, timeout: float) -> None:
    if address in ("auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"address must be 'auto', 'host:port' or 'ray://host:port', got {address!r}"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectionError(
            f"cannot reach the Ray cluster at address={address!r} ({reason} after at most "
            f"{timeout:g} s); start one with `ray start --head` or pass address=None for a "
            "local Ray"
        ) from None


# -- what the workers read ------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The Ray dataset a job maps over and how its worker turns a batch into chunks."""

    dataset: Any
    reader: Any
    rows_per_call: int
    count: int
    n_chunks: int


@dataclass(frozen=True)
class ArrayReader:
    """Rows ``{chunk, start, images[, ids][, labels]}``: one chunk of images each."""

    count: int | None
    name: str

    def chunks(self, batch: dict, model) -> list[Chunk]:
        from ..core.images import to_batch
        from ..core.sources import index_id

        out = []
        for row in range(len(batch["chunk"])):
            start = int(batch["start"][row])
            images = to_batch(np.asarray(batch["images"][row]), model, name=self.name)
            if "ids" in batch:
                ids = tuple(str(i) for i in batch["ids"][row])
            else:
                ids = tuple(index_id(start + i, self.count) for i in range(len(images)))
            labels = np.asarray(batch["labels"][row]) if "labels" in batch else None
            out.append(Chunk(int(batch["chunk"][row]), start, images, ids, labels))
        return out


@dataclass(frozen=True)
class FileReader:
    """Rows ``{chunk, start, paths, ids}``: the worker reads the files."""

    size: tuple[int, int] | None
    channels: int | None
    name: str

    def chunks(self, batch: dict, model) -> list[Chunk]:
        from ..core.images import to_batch
        from ..core.sources import read_image

        out = []
        for row in range(len(batch["chunk"])):
            paths = [str(p) for p in batch["paths"][row]]
            read = [read_image(p, size=self.size, channels=self.channels) for p in paths]
            if len({im.shape for im in read}) > 1:
                raise ValueError(
                    f"image files have different sizes {sorted({im.shape for im in read})}; "
                    "the model has a free input size, so resize them to one size first"
                )
            images = to_batch(np.stack(read), model, name=self.name)
            ids = tuple(str(i) for i in batch["ids"][row])
            out.append(Chunk(int(batch["chunk"][row]), int(batch["start"][row]), images, ids))
        return out


@dataclass(frozen=True)
class IndexReader:
    """Rows of a ``ray.data.Dataset`` numbered in :data:`INDEX`, one chunk per batch."""

    column: str
    chunk_size: int
    count: int
    name: str

    def chunks(self, batch: dict, model) -> list[Chunk]:
        from ..core.images import to_batch
        from ..core.sources import index_id

        index = np.asarray(batch[INDEX], np.int64)
        start = int(index[0])
        expected = min(self.chunk_size, self.count - start)
        if start % self.chunk_size or not np.array_equal(index, start + np.arange(expected)):
            raise RuntimeError(
                f"Ray handed a batch of rows {index[:3].tolist()}... that is not one chunk of "
                f"{self.chunk_size} rows starting at a multiple of it; this Ray version "
                "repartitions differently: please report it"
            )
        images = to_batch(np.asarray(batch[self.column]), model, name=self.name)
        ids = tuple(index_id(int(i)) for i in index)
        labels = np.asarray(batch["label"]) if "label" in batch else None
        return [Chunk(start // self.chunk_size, start, images, ids, labels)]


def _plan(ray, data, model, chunk_size: int, name: str, *, blocks: int) -> Plan:
    from ..core.batches import file_fit
    from ..core.images import to_batch
    from ..core.sources import open_source

    fit = file_fit(model)
    source = open_source(data, batch_size=chunk_size, name=name, **fit)
    if source.kind == "array":
        arr = source.array
        to_batch(arr[:1], model, name=name)  # a wrong size or channel count fails here, at once
        rows = [
            {"chunk": c, "start": s, "images": arr[s : s + chunk_size]}
            for c, s in enumerate(range(0, len(arr), chunk_size))
        ]
        return _rows_plan(ray, rows, ArrayReader(len(arr), name), len(arr), blocks)
    if source.files is not None:
        paths, ids = [str(p) for p in source.files], source.ids
        rows = [
            {
                "chunk": c,
                "start": s,
                "paths": paths[s : s + chunk_size],
                "ids": ids[s : s + chunk_size],
            }
            for c, s in enumerate(range(0, len(paths), chunk_size))
        ]
        reader = FileReader(fit["size"], fit["channels"], name)
        return _rows_plan(ray, rows, reader, len(paths), blocks)
    if source.kind == "ray.data":
        whole = data.materialize()  # the user's pipeline runs once, before the workers take CPUs
        plan = _ray_data_plan(ray, whole, chunk_size, name)
        if plan is not None:
            return plan
        source = open_source(whole, batch_size=chunk_size, name=name)
    # tf.data, iterables (and ray.data on a Ray that cannot number rows): the driver reads.
    from .chunks import iter_chunks

    rows, count = [], 0
    for chunk in iter_chunks(source, model, chunk_size, name=name):
        row = {"chunk": chunk.index, "start": chunk.start, "images": chunk.images,
               "ids": list(chunk.ids), "labels": chunk.labels}  # fmt: skip
        rows.append(row)
        count += len(chunk)
    if any(row["labels"] is None for row in rows):  # every row has the column, or none
        for row in rows:
            del row["labels"]
    return _rows_plan(ray, rows, ArrayReader(None, name), count, blocks)


def _rows_plan(ray, rows: list[dict], reader, count: int, blocks: int) -> Plan:
    # A block goes to one task: a few blocks per worker keep every worker busy (one block per
    # chunk left workers idle between calls a third of the time on 2 cores).
    dataset = (
        ray.data.from_items(rows, override_num_blocks=min(len(rows), blocks)) if rows else None
    )
    return Plan(dataset, reader, 1, count, len(rows))


def _ray_data_plan(ray, whole, chunk_size: int, name: str) -> Plan | None:
    """Number the rows of a materialised dataset (zip with a range) and cut it into blocks of
    exactly one chunk; None on a Ray without ``zip`` or strict repartitioning (Ray 2.60 has
    both; ``zip`` is announced to go in 2.64), where the driver reads the rows instead."""
    count = whole.count()
    if count == 0:
        return Plan(None, None, chunk_size, 0, 0)
    try:
        columns = whole.columns()
        column = "image" if "image" in columns else columns[0]
        index = ray.data.range(count).rename_columns({"id": INDEX})
        index.context.execution_options.preserve_order = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zip is deprecated for unordered data; ours is not
            kept = [column, *(["label"] if "label" in columns and column != "label" else [])]
            numbered = whole.select_columns(kept).zip(index)
        aligned = numbered.repartition(target_num_rows_per_block=chunk_size, strict=True)
    except (AttributeError, TypeError):
        return None
    reader = IndexReader(column, chunk_size, count, name)
    return Plan(aligned.materialize(), reader, chunk_size, count, chunk_count(count, chunk_size))


# -- the workers ----------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    """An error on a worker, tagged so that the driver can re-raise it as one line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"[vizkit:{kind}] {message}")


# Per Ray worker process: loaded models by ModelSpec.key. Ray reuses its worker processes for
# later tasks and jobs, so a model (and TensorFlow) is loaded once per process, not per job.
_MODELS: dict[str, tuple[Any, float]] = {}
_KEEP_MODELS = 2  # bound the memory a long-lived worker spends on models of earlier jobs


def run_chunks(batch: dict, *, spec, job, reader, threads: int = 1) -> dict:
    """A Ray Data task: turn a batch of chunk rows into pickled partial results.

    The model comes from this worker process's cache (:func:`worker_model`), so only the first
    task of a process pays for importing TensorFlow and loading the model.
    """
    model, ready = worker_model(spec, threads)
    try:
        chunks = reader.chunks(batch, model)
        parts = [pickle.dumps(job.partial(model, c), protocol=5) for c in chunks]
    except Exception as exc:
        raise WorkerError(type(exc).__name__, _first_line(exc)) from None
    partial = np.empty(len(parts), object)
    partial[:] = parts
    return {
        "chunk": np.array([c.index for c in chunks], np.int64),
        "n": np.array([len(c) for c in chunks], np.int64),
        "partial": partial,
        "ready": np.full(len(chunks), ready),
    }


def worker_model(spec, threads: int = 1) -> tuple[Any, float]:
    """``(model, wall time it was ready)`` for ``spec`` in this process, loaded at most once."""
    if spec.key in _MODELS:
        return _MODELS[spec.key]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # already initialised: keep its threads
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
            # Workers sharing a GPU (num_gpus < 1) must not each grab all of its memory.
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
        model = spec.load()
    except Exception as exc:
        raise WorkerError(
            "model",
            f"cannot load model {spec.name!r} on a Ray worker "
            f"({socket.gethostname()}): {type(exc).__name__}: {_first_line(exc)}",
        ) from None
    while len(_MODELS) >= _KEEP_MODELS:
        _MODELS.pop(next(iter(_MODELS)))
    _MODELS[spec.key] = (model, time.time())
    return _MODELS[spec.key]


# -- the driver -----------------------------------------------------------------------------------
def collect(
    rows: Iterable[dict], job, n_chunks: int, *, clock: dict | None = None, start: float = 0.0
):
    """Fold the partials of ``rows`` (``{chunk, n, partial}``, any order) in chunk order.

    A chunk that comes back twice (a retried task whose first result also arrived) is counted
    once. Returns ``(merged result, number of images)``.

    ``clock["first"]`` is set to the time (``time.perf_counter() - start``) the first row came
    and ``clock["ready_wall"]`` to the earliest ``ready`` wall time of the rows (when a worker
    was ready to compute).

    Raises
    ------
    RuntimeError
        When a chunk never came back.
    """
    from . import progress

    waiting: dict[int, tuple[int, bytes]] = {}
    seen: set[int] = set()
    acc, n_images, following = None, 0, 0
    for row in progress(rows, n_chunks):
        if clock is not None:
            clock.setdefault("first", time.perf_counter() - start)
            if "ready" in row:
                clock["ready_wall"] = min(clock.get("ready_wall", np.inf), float(row["ready"]))
        index = int(row["chunk"])
        if index in seen:
            continue
        seen.add(index)
        waiting[index] = (int(row["n"]), row["partial"])
        while following in waiting:
            size, blob = waiting.pop(following)
            acc = job.merge(acc, pickle.loads(blob))
            n_images += size
            following += 1
    if following != n_chunks or waiting:
        raise RuntimeError(
            f"the Ray job returned {len(seen)} of {n_chunks} chunks (first missing: "
            f"{following}); nothing was merged past it"
        )
    return acc, n_images


def worker_error(exc: BaseException) -> Exception:
    """One-line exception for a failed Ray job: a tagged worker error as its own type (a
    model that cannot be loaded as RuntimeError), anything else as RuntimeError."""
    for text in _messages(exc):
        found = _WORKER_ERROR.search(text)
        if found:
            kind, message = found.groups()
            return _ERROR_TYPES.get(kind, RuntimeError)(message)
    return RuntimeError(f"the Ray job failed: {_first_line(exc)}")


def _cause(exc: BaseException) -> BaseException | None:
    """Keep the traceback chain only for errors that are not ours (they may need debugging)."""
    return None if any(_WORKER_ERROR.search(t) for t in _messages(exc)) else exc


def _messages(exc: BaseException) -> Iterator[str]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield str(exc)
        exc = exc.__cause__ or exc.__context__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Ray Data logs each execution at INFO level; a vizkit job shows its own progress bar."""
    logger = logging.getLogger("ray.data")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # e.g. "the operator only received 1 input(s)" for a job of one chunk
            warnings.filterwarnings("ignore", module=r"ray\.")
            yield
    finally:
        logger.setLevel(before)
