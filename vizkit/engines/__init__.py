"""Engines for dataset jobs: one process (``"local"``) or a Ray cluster (``"ray"``).

A dataset job (the top-activating images of every channel, the dead-channel diagnosis, maps
written to disk) is a :class:`Job`: what one chunk of images contributes (``partial``) and how
contributions combine (``merge``, applied in chunk order). The local engine runs the chunks one
after the other in this process; the Ray engine hands them to Ray Data tasks on worker
processes that keep the loaded model between tasks and jobs, and folds their partial results in
the driver. Both cut the data at the same places and use the same partial and merge functions,
so they return the same answer
(:mod:`vizkit.engines.reductions`).

A job may also write files: :class:`vizkit.engines.maps.MapsJob` writes each chunk's shard
where it is computed and returns the shard's record; the driver writes one index from the
records, in chunk order, at the end. An export job follows the same pattern (each worker renders
and writes its chunk's figures and returns their manifest entries; the driver writes
``manifest.json`` and ``index.html`` once).

Ray is optional (``pip install "vizkit[ray]"``) and only imported when ``engine="ray"`` runs;
importing this package never imports Ray or TensorFlow.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Protocol

from ..core.checks import choice
from .chunks import Chunk, chunk_count, iter_chunks
from .model_spec import ModelSpec, spec_for
from .ray_engine import RayEngine
from .reductions import ChannelStats, TopK, merge_layers

ENGINES = ("local", "ray")

__all__ = [
    "ENGINES",
    "ChannelStats",
    "Chunk",
    "Job",
    "LocalEngine",
    "ModelSpec",
    "RayEngine",
    "TopK",
    "chunk_count",
    "iter_chunks",
    "merge_layers",
    "ordered",
    "progress_bars",
    "resolve_engine",
    "run",
    "spec_for",
]


class Job(Protocol):
    """A dataset job: picklable, so that Ray workers receive it."""

    def partial(self, model, chunk: Chunk) -> Any:
        """What ``chunk`` contributes (small and picklable: it travels to the driver)."""

    def merge(self, acc: Any, part: Any) -> Any:
        """``acc`` (None before the first chunk) combined with the next chunk's ``part``."""


class LocalEngine:
    """Run every chunk in this process, one after the other."""

    name = "local"

    def run(self, job: Job, model, data, *, chunk_size: int, name: str = "data"):
        """``(merged result, number of images)``; see :func:`run`."""
        from ..core.batches import file_fit
        from ..core.sources import open_source

        with ordered(data):
            source = open_source(data, batch_size=chunk_size, name=name, **file_fit(model))
            total = None if source.count is None else chunk_count(source.count, chunk_size)
            acc, n_images = None, 0
            for chunk in progress(iter_chunks(source, model, chunk_size, name=name), total):
                acc = job.merge(acc, job.partial(model, chunk))
                n_images += len(chunk)
        return acc, n_images

    def __repr__(self) -> str:
        return "LocalEngine()"


def resolve_engine(engine="local", *, address: str | None = None, workers: int | None = None):
    """The engine object for ``engine``: ``"local"``, ``"ray"`` or an engine object.

    ``address`` and ``workers`` configure the Ray engine (``engine="ray"``); with the local
    engine they must be left unset.
    """
    if not isinstance(engine, str):
        if not callable(getattr(engine, "run", None)):
            raise TypeError(
                f"engine must be 'local', 'ray' or an engine object, got {type(engine).__name__}"
            )
        if address is not None or workers is not None:
            raise ValueError(
                "address and workers configure engine='ray'; with an engine object, pass "
                "them to its constructor"
            )
        return engine
    choice(engine, "engine", ENGINES)
    if engine == "ray":
        return RayEngine(address=address, workers=workers)
    if address is not None or workers is not None:
        raise ValueError(
            f"address={address!r} and workers={workers!r} only apply to engine='ray'; "
            "the local engine runs in this process"
        )
    return LocalEngine()


def run(
    job: Job,
    model,
    data,
    *,
    batch_size: int | None = None,
    engine="local",
    address: str | None = None,
    workers: int | None = None,
    name: str = "data",
):
    """Run ``job`` over ``data`` on ``engine``.

    Parameters
    ----------
    job : Job
    model : keras.Model
    data
        Anything :func:`vizkit.core.sources.open_source` accepts.
    batch_size : int, optional
        Images per chunk (one forward pass each); default 32.
    engine : {"local", "ray"} or an engine object
    address, workers
        For ``engine="ray"``: the cluster (``ray.init(address=...)``; a local Ray when None)
        and the number of workers (default: as many as the cluster has room for).
    name : str
        What to call ``data`` in error messages.

    Returns
    -------
    result, n_images
        The merged partial results and the number of images seen.

    Raises
    ------
    ValueError
        When ``data`` holds no image.
    """
    from ..core.graph import check_batch_size

    chosen = resolve_engine(engine, address=address, workers=workers)
    result, n_images = chosen.run(
        job, model, data, chunk_size=check_batch_size(batch_size), name=name
    )
    if n_images == 0:
        raise ValueError(f"{name} is empty: there is no image to process")
    return result, n_images


@contextlib.contextmanager
def ordered(data) -> Iterator[None]:
    """While inside, a ``ray.data.Dataset`` yields its rows in a fixed order (Ray Data may
    otherwise reorder blocks between runs), so that image indices mean the same in every
    engine. Other data pass through unchanged."""
    context = getattr(data, "context", None)
    if not type(data).__module__.startswith("ray.data") or context is None:
        yield
        return
    options = context.execution_options
    before = options.preserve_order
    options.preserve_order = True
    try:
        yield
    finally:
        options.preserve_order = before


_BARS: contextvars.ContextVar[bool] = contextvars.ContextVar("vizkit_engine_bars", default=True)


@contextlib.contextmanager
def progress_bars(show: bool) -> Iterator[None]:
    """Within the block, dataset jobs show (``True``, on a terminal) or hide their progress bar
    over the chunks (for callers with a ``progress=False`` option)."""
    token = _BARS.set(bool(show))
    try:
        yield
    finally:
        _BARS.reset(token)


def progress(chunks, total: int | None):
    """``chunks`` with a progress bar on a terminal when the job is long enough to need one
    (and :func:`progress_bars` does not hide it)."""
    if (total is not None and total < 8) or not _BARS.get():
        return chunks
    from tqdm.auto import tqdm

    return tqdm(chunks, total=total, unit="chunk", leave=False, disable=None)
