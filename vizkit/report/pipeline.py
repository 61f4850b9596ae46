"""A bounded worker pool for the export: draw and write figures while the model computes.

The export's main thread computes a chunk of images and hands its figures to :class:`Pipeline`;
worker threads or processes draw and write them while the main thread computes the next chunk.
A chunk's figures of one method go as one batch per worker, drawn together
(:class:`~vizkit.render.tasks.DrawBatch`). Tasks making at most ``bound`` figures are in flight,
so memory does not grow with the number of images: a submit waits for room. Results come back
to ``on_done`` in the main thread, which is the only thread that touches the manifest.

Raster pictures are drawn by threads: OpenCV and NumPy release the GIL, and there is nothing to
start. matplotlib figures (``style="matplotlib"``, PDF, SVG) go to processes, since matplotlib
holds the GIL while it lays a figure out. The processes are loky's reusable executor (bundled
with joblib, which scikit-learn brings): started once a session and kept, fresh interpreters (a
fork of a process running TensorFlow's thread pools is not safe) that do not re-run the user's
script (multiprocessing's spawn would, without an ``if __name__ == "__main__"`` guard).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..render.tasks import DrawBatch, DrawTask, run_task, warm_up


def process_pool(workers: int) -> Executor:
    """``workers`` worker processes for export tasks: loky's reusable executor, started on first
    use and kept for the session (each process imports NumPy, OpenCV and matplotlib once); a
    pool whose processes died is replaced."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers, initializer=warm_up)


class Pipeline:
    """Run :func:`vizkit.render.tasks.run_task` on ``workers`` threads or processes.

    ``workers=0`` runs every task at once in the calling thread (no overlap, for debugging).
    ``on_done(tag, result)`` is called in the calling thread for each finished task. The first
    task that fails stops the pipeline: tasks not started are cancelled, running ones finish
    (and are reported), and the error is raised from :meth:`submit`, :meth:`poll` or
    :meth:`drain`.
    """

    def __init__(
        self,
        workers: int,
        on_done: Callable[[Any, dict[str, Any]], None],
        *,
        processes: bool = False,
        bound: int | None = None,
    ) -> None:
        self.on_done = on_done
        self.bound = bound or max(8, 4 * workers)
        self._inflight: dict[Future, Any] = {}
        self._weights: dict[Future, int] = {}  # figures each task in flight makes
        self._load = 0  # their sum
        self._finished: collections.deque[Future] = collections.deque()  # filled by workers
        self._executor: Executor | None = None
        self._shared = bool(workers and processes)  # the session's pool: not ours to shut down
        self._workers = workers
        if self._shared:
            self._executor = process_pool(workers)
        elif workers:
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="vizkit-export")

    def submit(self, task, tag: Any, *, weight: int = 1) -> None:
        """Queue ``task`` (``weight``: how many figures it makes); waits while tasks of
        ``bound`` figures are in flight."""
        if self._executor is None:
            self._report(tag, run_task(task))
            return
        while self._inflight and self._load + weight > self.bound:
            self._finish(wait(self._inflight, return_when=FIRST_COMPLETED).done)
        try:
            future = self._executor.submit(run_task, task)
        except BrokenProcessPool:  # a worker process died (killed, out of memory): start anew
            self._executor = process_pool(self._workers)
            future = self._executor.submit(run_task, task)
        self._inflight[future] = tag
        self._weights[future] = weight
        self._load += weight
        future.add_done_callback(self._finished.append)
        self.poll()

    def submit_figures(self, tasks: list[DrawTask], tags: list[Any]) -> None:
        """Queue draw tasks of one kind as a few :class:`~vizkit.render.tasks.DrawBatch` es,
        one per worker, so that every worker draws a share of them together; ``on_done`` gets
        each figure's tag and result as :meth:`submit` would give them."""
        if not tasks:
            return
        parts = max(1, min(len(tasks), self._workers))
        size = -(-len(tasks) // parts)
        for at in range(0, len(tasks), size):
            part = tasks[at : at + size]
            self.submit(DrawBatch(tuple(part)), (_BATCH, tags[at : at + size]), weight=len(part))

    def poll(self) -> None:
        """Report the tasks that have finished, without waiting."""
        done = []
        while self._finished:
            done.append(self._finished.popleft())
        self._finish(done)

    def drain(self) -> None:
        """Wait for every task in flight and report it."""
        while self._inflight:
            self._finish(wait(self._inflight, return_when=FIRST_COMPLETED).done)

    def close(self) -> None:
        """Stop: cancel what has not started, let running tasks finish and report the ones that
        succeeded (their errors are dropped: the first error is already on its way)."""
        if self._executor is None:
            return
        for future in self._inflight:
            future.cancel()
        if self._shared:
            wait(self._inflight)  # the running ones; the pool stays for the next export
        else:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None
        for future, tag in list(self._inflight.items()):
            if not future.cancelled() and future.exception() is None:
                with contextlib.suppress(OSError):  # the first error is the one to report
                    self._report(tag, future.result())
        self._inflight.clear()
        self._weights.clear()
        self._load = 0
        self._finished.clear()

    def _finish(self, futures) -> None:
        for future in futures:
            tag = self._inflight.pop(future, None)
            if tag is not None:  # not reported yet (wait() and the callback both see it)
                self._load -= self._weights.pop(future, 1)
                self._report(tag, future.result())  # re-raises the task's error

    def _report(self, tag: Any, result: dict[str, Any]) -> None:
        if isinstance(tag, tuple) and tag and tag[0] is _BATCH:
            for one, outcome in zip(tag[1], result["results"], strict=True):
                self.on_done(one, outcome)
        else:
            self.on_done(tag, result)


_BATCH = object()  # marks the tag of a DrawBatch: a list of the figures' own tags


__all__ = ["Pipeline"]
