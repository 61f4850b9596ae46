"""A bounded worker pool for the export: draw and write figures while the model computes.

The export's main thread computes a chunk of images and hands one task per figure to
:class:`Pipeline`; worker threads or processes draw and write them while the main thread
computes the next chunk. At most ``bound`` tasks are in flight, so memory does not grow with the
number of images: a submit waits for a free slot. Results come back to ``on_done`` in the main
thread, which is the only thread that touches the manifest.

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

from ..render.tasks import run_task, warm_up


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
        self._finished: collections.deque[Future] = collections.deque()  # filled by workers
        self._executor: Executor | None = None
        self._shared = bool(workers and processes)  # the session's pool: not ours to shut down
        self._workers = workers
        if self._shared:
            self._executor = process_pool(workers)
        elif workers:
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="vizkit-export")

    def submit(self, task, tag: Any) -> None:
        """Queue ``task``; waits while ``bound`` tasks are in flight."""
        if self._executor is None:
            self.on_done(tag, run_task(task))
            return
        while len(self._inflight) >= self.bound:
            self._finish(wait(self._inflight, return_when=FIRST_COMPLETED).done)
        try:
            future = self._executor.submit(run_task, task)
        except BrokenProcessPool:  # a worker process died (killed, out of memory): start anew
            self._executor = process_pool(self._workers)
            future = self._executor.submit(run_task, task)
        self._inflight[future] = tag
        future.add_done_callback(self._finished.append)
        self.poll()

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
                    self.on_done(tag, future.result())
        self._inflight.clear()
        self._finished.clear()

    def _finish(self, futures) -> None:
        for future in futures:
            tag = self._inflight.pop(future, None)
            if tag is not None:  # not reported yet (wait() and the callback both see it)
                self.on_done(tag, future.result())  # re-raises the task's error


__all__ = ["Pipeline"]
