"""The export on a dataset engine (``vizkit.export(..., engine="ray")``).

The per-image figures are a dataset job (:mod:`vizkit.engines`): :class:`ExportJob` is what one
chunk of images contributes. On the worker that holds the chunk, ``partial`` runs the same code
as the local export (:meth:`vizkit.report.run.Run.compute_chunk`: predictions, every per-image
method, the pictures, the input images), checks what is recorded already against the manifest
as it was when the export began, and writes the files into a staging folder of the report; it
returns the manifest's journal records of that chunk. In the driver, ``merge`` (chunk by chunk,
in order) journals the chunk's paths as pending, moves its files into place and journals their
entries; after the last chunk the driver writes the per-layer figures, ``manifest.json`` and the
HTML pages once.

Why a staging folder: a file reaches its place only after the driver has journaled it as
pending, as in the local export. A chunk whose result never reaches the driver (a worker lost
after writing, a failed or interrupted job) leaves nothing in the report, so a rerun resumes
from what the manifest records and never finds a file it did not write. Ray runs a chunk again
when its worker dies, and the driver counts each chunk once
(:func:`vizkit.engines.ray_engine.collect`).

Every worker must see the report folder (shared storage on a cluster).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.files import UniqueNames, contained, current_umask
from .manifest import Manifest
from .plan import Plan, Settings
from .run import Run, file_id

STAGING = ".vizkit-staging"  # hidden: never a model slug, skipped by the report

# Per worker process: the manifest as the export began, by export token (one kept).
_SNAPSHOT: dict[str, tuple[Manifest, set[str]]] = {}


@dataclass
class ExportJob:
    """The per-image figures of one model for one chunk at a time (see the module docstring).

    ``plan`` travels without its model (the worker attaches its own copy); ``names`` holds the
    file names of the images whose name is not their plain slug (two files whose names make
    the same slug, which the driver numbers in data order as the local export does);
    ``recorder`` is the driver's callback for each chunk's result (never sent to workers).
    """

    plan: Plan
    settings: Settings
    root: str
    staging: str
    token: str
    resume: bool
    overwrite: bool
    chunk_size: int
    umask: int
    names: dict[str, str] = field(default_factory=dict)
    recorder: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["recorder"] = None  # the driver's manifest stays in the driver
        return state

    def partial(self, model, chunk) -> dict[str, Any]:
        """Compute, draw and stage the figures of ``chunk``; returns the journal records,
        every path this chunk's figures take (made or kept), and counts."""
        manifest, known = _snapshot(self.root, self.token)
        plan = replace(self.plan, model=model, image_names=_Names(self.names))
        folder = Path(self.staging) / f"c{chunk.index:06d}"
        run = Run(manifest, [plan], self.settings, resume=self.resume, overwrite=self.overwrite,
                  chunk=self.chunk_size, sample_images=0, sample_bytes=0, files_root=folder,
                  umask=self.umask, known=known)  # fmt: skip
        run.start(0, False, None)  # draw in this process, one figure after the other
        with manifest.captured() as records:
            try:
                run.compute_chunk(plan, chunk)
                run.finish()
            except BaseException:
                run.abort()
                raise
        return {
            "records": records,
            "planned": sorted(run.planned),
            "count": len(chunk),
            "figures": len(plan.image_groups) * len(chunk),
            "staged": str(folder),
        }

    def merge(self, acc, part: dict[str, Any]) -> int:
        """Record ``part`` in the driver (see :func:`record_part`); counts the images."""
        if self.recorder is not None:
            self.recorder(part)
        return (acc or 0) + part["count"]


class _Names:
    """A plan's image file names on a worker: the driver's where they differ from the slug."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def __call__(self, name: str) -> str:
        return self.names.get(name) or UniqueNames()(name)


def stream_on_engine(
    run: Run, source, images, engine, *, again: bool, keep: bool, chunk: int
) -> Any:
    """Compute the per-image figures of every plan of ``run`` as dataset jobs on ``engine``
    (one job per model) and record them in ``run``'s manifest.

    ``again`` says whether ``images`` can be read more than once; a one-shot stream is read
    into memory here (the Ray engine's driver reads such data itself anyway) and, with
    ``keep``, its first images are kept as the local export keeps them. Returns the data for
    the per-layer methods and the diagnosis: ``images``, or that sample.
    """
    from ..engines import run as run_job

    manifest = run.manifest
    plans = [p for p in run.plans if p.image_groups]
    if not plans:  # nothing to compute per image: count (and keep) the images here
        run.stream(source, keep=keep)
        return images if again else run.sample()
    if not again:
        held = []
        for batch in source:
            held.append(batch.images if batch.labels is None else (batch.images, batch.labels))
            if keep:
                run.keep_sample(batch.images)
        images = held
    manifest.save()  # the state workers check against: manifest.json, without the journal
    token = uuid.uuid4().hex[:12]
    staging = contained(manifest.folder, STAGING, token)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(manifest.folder / STAGING)  # left by an export that was killed
    try:
        for plan in plans:
            job = ExportJob(
                plan=replace(plan, model=None, image_names=UniqueNames()),
                settings=run.settings,
                root=str(manifest.folder),
                staging=str(staging),
                token=token,
                resume=run.resume,
                overwrite=run.overwrite,
                chunk_size=chunk,
                umask=current_umask(),
                names=_collisions(plan, source),
            )
            job.recorder = lambda part, plan=plan: record_part(run, plan, part)
            run_job(job, plan.model, images, batch_size=chunk, engine=engine, name="images")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            (manifest.folder / STAGING).rmdir()
    return run.sample() if not again else images


def record_part(run: Run, plan: Plan, part: dict[str, Any]) -> None:
    """In the driver: journal a chunk's paths as pending, move its staged files into place,
    journal its entries and input images, and count its images and figures."""
    manifest = run.manifest
    records = part["records"]
    pending = [r for r in records if r.get("op") == "pending"]
    manifest.replay(pending)
    staged = Path(part["staged"])
    for record in pending:
        for rel in record["paths"]:
            source = contained(staged, *rel.split("/"))
            if not os.path.lexists(source):
                continue
            target = contained(manifest.folder, *rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    manifest.replay(r for r in records if r.get("op") != "pending")
    run.planned.update(part["planned"])
    run.seen[plan.name] += part["count"]
    run.advance(part["figures"])


def _collisions(plan: Plan, source) -> dict[str, str]:
    """File names of images whose name is not their plain slug (only files can collide:
    other sources name images by their index)."""
    if source.ids is None:
        return {}
    names = plan.image_names
    out = {}
    for image_id in source.ids:
        name = file_id(str(image_id))
        given = names(name)
        if given != UniqueNames()(name):
            out[name] = given
    return out


def _snapshot(root: str, token: str) -> tuple[Manifest, set[str]]:
    """The manifest as the export began (``manifest.json``, which the driver compacted), and
    the paths it knows, loaded once per worker process and export."""
    if token not in _SNAPSHOT:
        _SNAPSHOT.clear()
        manifest = Manifest.load(Path(root), journal=False)
        _SNAPSHOT[token] = (manifest, manifest.known_paths())
    return _SNAPSHOT[token]


__all__ = ["STAGING", "ExportJob", "record_part", "stream_on_engine"]
