"""Running an export: the images streamed chunk by chunk, each chunk's methods computed in the
main thread while the worker pool draws and writes the previous figures, the manifest journal
kept up to date, per-layer methods and the clean-up after the stream."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.files import contained, current_umask
from ..core.images import to_batch
from ..methods.diagnose import diagnose
from ..registry import METHODS
from ..render.tasks import DrawTask, ImageTask
from . import captions
from .compute import ONE_PASS, Context, call
from .inputs import image_sha1, predictions, true_label
from .manifest import Entry, Manifest, normalize
from .pipeline import Pipeline
from .plan import Group, Job, Plan, Settings, make_job, matplotlib_title, target_at

INPUT_FOLDER = "_input"  # folder of the input images shown in the per-image view


def check_layer_groups(plans: list[Plan], manifest: Manifest, *, resume, overwrite) -> None:
    """Raise before any work if a per-layer figure would replace a file it may not."""
    known = manifest.known_paths()
    for plan in plans:
        for group in plan.layer_groups:
            _check_job(group, group.jobs[0], manifest, known, resume=resume, overwrite=overwrite)


def _needs_work(group: Group, job: Job, manifest: Manifest, resume: bool) -> bool:
    if not resume:
        return True
    for fmt, path in job.files.items():
        if manifest.find(path, group.key(job.image_id, fmt), job.parameters) is None:
            return True
    return False


def _check_job(group, job, manifest: Manifest, known: set, *, resume, overwrite) -> None:
    """Raise ``FileExistsError`` if writing ``job`` would replace, without ``overwrite``, a
    figure of an earlier export made with other parameters (or any, with ``resume=False``) or
    a file vizkit did not write."""
    own = set()  # paths of this figure's earlier entries (besides the pending ones)
    folder = os.fspath(manifest.folder)
    for fmt in job.files:
        old = manifest.by_key(group.key(job.image_id, fmt))
        if old is None:
            continue
        same = resume and old.parameters == job.parameters
        if not same and not overwrite and (manifest.folder / old.path).exists():
            _refuse(manifest.folder, old.path, "made by an earlier export with other parameters, "
                    "or resume=False")  # fmt: skip
        own |= {old.path, old.thumbnail}
    for path in (*job.files.values(), job.thumbnail):
        if overwrite or path in own or path in manifest.pending:
            continue
        if not os.path.exists(os.path.join(folder, path)):  # (strings: many figures a second)
            continue
        if path in known:
            why = "made by an earlier export with other parameters, or resume=False"
        else:
            why = "not written by vizkit export"
        _refuse(manifest.folder, path, why)


def _refuse(folder: Path, path: str, why: str) -> None:
    target = contained(folder, *path.split("/"))
    raise FileExistsError(
        f"{str(target)!r} already exists ({why}); pass overwrite=True (--overwrite) to replace "
        "it or choose another output folder"
    )


@dataclass
class Chunk:
    """The images of the current chunk for one model.

    ``shared`` holds results computed for several layers at once (:data:`ONE_PASS`):
    ``(method, layer) -> (rows, result for those rows)``.
    """

    plan: Plan
    x: np.ndarray
    infos: list[dict[str, Any]]
    shared: dict[tuple, tuple[list[int], np.ndarray]] = field(default_factory=dict)


class Writer:
    """Computes a group's figures for some jobs and hands them to the pipeline.

    Files are written under ``files_root`` (default: the report folder; a distributed export's
    worker writes into a staging folder that the driver moves into place).
    """

    def __init__(
        self,
        manifest: Manifest,
        settings: Settings,
        plans: list[Plan],
        *,
        files_root: Path | None = None,
        umask: int | None = None,
        engine=None,
    ):
        self.manifest = manifest
        self.settings = settings
        self.plans = {p.name: p for p in plans}
        self.pipeline: Pipeline | None = None
        self.files_root = Path(files_root) if files_root is not None else manifest.folder
        self._root = os.fspath(self.files_root)
        # Worker processes outlive an export; they take the umask of this one with each task.
        if umask is None and settings.matplotlib:
            umask = current_umask()
        self.umask = umask
        self.chunk: Chunk | None = None
        self.data = None  # the dataset for per-layer methods that need one
        self.engine = engine  # the dataset engine of per-layer methods that take one

    def run(self, group: Group, jobs: list[Job]) -> None:
        method = METHODS[group.method]
        plan = self.plans[group.model]
        if method.per_image:
            rows = [job.row for job in jobs]
            infos = [self.chunk.infos[r] for r in rows]
            targets = [i.get("target") for i in infos] if method.target else None
            ctx = Context(plan.model, self.chunk.x[rows], targets, plan.layers,
                          preprocess=plan.preprocess)  # fmt: skip
        else:
            infos = [None]
            ctx = Context(plan.model, np.zeros((0,)), None, plan.layers,
                          preprocess=plan.preprocess, data=self.data,
                          engine=self.engine)  # fmt: skip
        start = time.perf_counter()
        shared = self.chunk.shared.get((group.method, group.layer)) if method.per_image else None
        if shared is not None:  # computed with the method's other layers in one pass
            at = {r: i for i, r in enumerate(shared[0])}
            result = shared[1][[at[r] for r in rows]]
        else:
            result = call(method, ctx, group.layer, group.options)
        share = (time.perf_counter() - start) / len(jobs)
        self.manifest.mark_pending(p for job in jobs for p in (*job.files.values(), job.thumbnail))
        tasks, tags = [], []
        for row, (job, info) in enumerate(zip(jobs, infos, strict=True)):
            item = result[row] if method.per_image else result
            image = ctx.images[row] if method.per_image else None
            task = DrawTask(
                kind=method.renderer,
                result=item,
                image=image,
                title=matplotlib_title(group, job.image) if self.settings.matplotlib else "",
                files={f: self.abs_path(p) for f, p in job.files.items()},
                thumbnail=self.abs_path(job.thumbnail),
                style=self.settings.style,
                dpi=self.settings.dpi,
                thumbnail_size=self.settings.thumbnail_size,
                umask=self.umask,
            )
            tasks.append(task)
            tags.append(("figure", group, job, info, share))
        self.pipeline.submit_figures(tasks, tags)

    def abs_path(self, rel: str) -> str:
        # Report paths are made of slugs (UniqueNames): they cannot leave the folder.
        return os.path.join(self._root, rel)


class Run:
    """The state of one export while it runs.

    ``files_root``, ``umask``, ``known`` and ``engine`` serve a distributed export: a worker's
    run writes into a staging folder with the exporting process's umask and checks against the
    paths the manifest knew when the export began; per-layer methods that rank a dataset
    (top-activating images) run on ``engine``.
    """

    def __init__(
        self,
        manifest: Manifest,
        plans: list[Plan],
        settings: Settings,
        *,
        resume: bool,
        overwrite: bool,
        chunk: int,
        sample_images: int,
        sample_bytes: int,
        files_root: Path | None = None,
        umask: int | None = None,
        known: set[str] | None = None,
        engine=None,
    ):
        self.manifest = manifest
        self.plans = plans
        self.settings = settings
        self.resume = resume
        self.overwrite = overwrite
        self.chunk = chunk  # images per chunk (bounds the tasks in flight)
        # What a one-shot stream keeps for top-activating images and the diagnosis.
        self.sample_images = sample_images
        self.sample_bytes = sample_bytes
        self.writer = Writer(manifest, settings, plans, files_root=files_root, umask=umask,
                             engine=engine)  # fmt: skip
        self.planned: set[str] = set()  # every path this export makes (or keeps)
        self.seen = {p.name: 0 for p in plans}
        self.known = manifest.known_paths() if known is None else known
        self._sample: list[np.ndarray] = []
        self._kept = 0
        self.bar = None

    def start(self, workers: int, progress: bool, total: int | None) -> None:
        # Threads for raster pictures (OpenCV and NumPy release the GIL); processes for
        # matplotlib figures, which hold it while they are laid out.
        self.writer.pipeline = Pipeline(workers, self._done, processes=self.settings.matplotlib,
                                        bound=max(4 * self.chunk, 4 * workers))  # fmt: skip
        self.bar = progress_bar(total, enabled=progress)

    # -- per-image methods, streamed ------------------------------------------------------------
    def stream(self, source, *, keep: bool) -> None:
        """Compute and draw the per-image methods chunk by chunk; with ``keep``, also keep the
        first ``sample`` images (a one-shot stream cannot be read again)."""
        if not keep and not any(p.image_groups for p in self.plans):
            self.seen = {p.name: source.count for p in self.plans}  # nothing to read
            return
        for batch in source:
            if keep:
                self.keep_sample(batch.images)
            for plan in self.plans:
                self.seen[plan.name] += len(batch)
                if plan.image_groups:
                    self.compute_chunk(plan, batch)
            self.writer.pipeline.poll()

    def compute_chunk(self, plan: Plan, batch) -> None:
        """Compute, draw and write (through the pipeline) the per-image figures of ``plan``
        for one chunk of images (``batch``: ``images``, ``ids``, ``labels``, ``start``) that
        are not recorded yet, and their input pictures."""
        x = to_batch(batch.images, plan.model)
        ids = [str(i) for i in batch.ids]
        names = [plan.image_names(file_id(i)) for i in ids]
        sha = [image_sha1(img) for img in x]
        todo, rows = [], set()
        for group in plan.image_groups:
            jobs = []
            for row in range(len(x)):
                params = dict(group.parameters)
                params["image_sha1"] = sha[row]
                if plan.targets is not None and METHODS[group.method].target:
                    params["targets"] = target_at(plan.targets, batch.start + row)
                job = make_job(group, batch.start + row, ids[row], names[row],
                           self.settings.formats, normalize(params), row)  # fmt: skip
                self.planned.update((*job.files.values(), job.thumbnail))
                if _needs_work(group, job, self.manifest, self.resume):
                    _check_job(group, job, self.manifest, self.known, resume=self.resume,
                               overwrite=self.overwrite)  # fmt: skip
                    jobs.append(job)
                    rows.add(row)
                else:
                    self.advance(1)
            if jobs:
                todo.append((group, jobs))
        inputs = ["/".join((plan.slug, INPUT_FOLDER, f"{n}.png")) for n in names]
        self.planned.update(inputs)
        recorded = self.manifest.images.get(plan.name, {})
        redraw = set()  # rows whose input picture is missing or out of date
        for row, image_id in enumerate(ids):
            old = recorded.get(image_id) or {}
            if (
                old.get("sha1") != sha[row]
                or old.get("path") != inputs[row]
                or not (self.manifest.folder / inputs[row]).is_file()
            ):
                redraw.add(row)
        rows |= redraw
        if not rows:
            return
        order = sorted(rows)
        labels = [None] * len(x) if batch.labels is None else [true_label(v) for v in batch.labels]
        fresh = image_infos(plan, x[order], [labels[r] for r in order], batch.start,
                            [inputs[r] for r in order], rows=order,
                            batch_size=self.chunk)  # fmt: skip
        infos = [recorded.get(i, {}) for i in ids]
        for row, info in zip(order, fresh, strict=True):
            info["sha1"] = sha[row]
            infos[row] = info
            if row in redraw:
                self._write_input(plan, ids[row], x[row], info)
            elif recorded[ids[row]] != info:  # same picture, new facts (e.g. other targets)
                self.manifest.record_image(plan.name, ids[row], info)
        self.writer.chunk = Chunk(plan, x, infos, _one_pass(plan, x, todo))
        for group, jobs in todo:
            self.writer.run(group, jobs)

    def _write_input(self, plan: Plan, image_id: str, image, info: dict[str, Any]) -> None:
        path = info["path"]
        check_free_path(self.manifest, path, self.known, self.overwrite)
        self.manifest.mark_pending([path])
        task = ImageTask(image, self.writer.abs_path(path), self.writer.umask)
        self.writer.pipeline.submit(task, ("image", plan.name, image_id, info))

    # -- per-layer methods --------------------------------------------------------------------
    def layer_groups(self, data) -> None:
        self.writer.data = data
        for plan in self.plans:
            for group in plan.layer_groups:
                job = group.jobs[0]
                self.planned.update((*job.files.values(), job.thumbnail))
                if _needs_work(group, job, self.manifest, self.resume):
                    self.writer.run(group, [job])
                else:
                    self.advance(1)

    def finish(self) -> None:
        self.writer.pipeline.drain()
        self.writer.pipeline.close()
        self.manifest.sync()
        if self.bar is not None:
            self.bar.close()

    def abort(self) -> None:
        try:
            if self.writer.pipeline is not None:
                self.writer.pipeline.close()
        finally:
            if self.bar is not None:
                self.bar.close()
            self.manifest.close()

    # -- results --------------------------------------------------------------------------------
    def _done(self, tag, result: dict[str, Any]) -> None:
        if tag[0] == "image":
            _, model, image_id, info = tag
            self.manifest.record_image(model, image_id, info)
            return
        _, group, job, info, share = tag
        notes = result["notes"]
        title = captions.figure_title(group.method, group.variant, group.layer)
        names = self.settings.class_names
        facts = captions.image_facts(job.image_id, info, names)
        if METHODS[group.method].target:
            facts += captions.target_fact(info, names)
        text = captions.caption(facts, captions.picture_facts(notes))
        for fmt, rel in job.files.items():
            self.manifest.record(
                Entry(
                    path=rel,
                    method=group.method,
                    model=group.model,
                    layer=group.layer,
                    image=job.image,
                    format=fmt,
                    parameters=job.parameters,
                    seconds=round(share + result["seconds"], 4),
                    thumbnail=job.thumbnail,
                    image_id=job.image_id,
                    variant=group.variant,
                    title=title,
                    caption=text,
                    notes=notes,
                    size=result["sizes"].get(fmt),
                )
            )
        self.advance(1)

    def advance(self, n: int) -> None:
        """Move the progress bar by ``n`` figures."""
        if self.bar is not None:
            self.bar.update(n)

    # -- the dataset for per-layer methods --------------------------------------------------------
    def keep_sample(self, images) -> None:
        """Keep the first of ``images`` for per-layer methods and the diagnosis, up to the
        sample's limits (a one-shot stream cannot be read again)."""
        arr = np.asarray(images)
        limit = min(self.sample_images, self.sample_bytes // max(1, arr[:1].nbytes))
        room = limit - self._kept
        if room > 0:
            part = arr[:room].copy()  # a copy: the stream's own buffers are not held
            self._sample.append(part)
            self._kept += len(part)

    def sample(self):
        """The images kept from a one-shot stream (the first ``sample_images``, at most
        ``sample_bytes`` of them)."""
        if not self._sample:
            return None
        return np.concatenate(self._sample)

    # -- clean-up -------------------------------------------------------------------------------
    def remove_stale(self) -> None:
        """Remove the figures of this export's (model, method) pairs that it did not make now,
        input images no figure uses any more, and files an interrupted run left unfinished:
        the report shows what the manifest lists."""
        manifest = self.manifest
        pairs = {(p.name, g.method) for p in self.plans for g in p.groups}
        stale = [
            e
            for e in manifest.entries.values()
            if (e.model, e.method) in pairs and e.path not in self.planned
        ]
        gone = {e.path for e in stale}
        used: dict[str, set] = {}
        for e in manifest.entries.values():
            if e.path not in gone and e.image_id is not None:
                used.setdefault(e.model, set()).add(e.image_id)
        inputs = {
            info["path"]
            for plan in self.plans
            if plan.image_groups
            for image_id, info in manifest.images.get(plan.name, {}).items()
            if image_id not in used.get(plan.name, set()) and info.get("path")
        }
        # Files an interrupted run started (pending) that this run did not make again.
        unfinished = {rel for rel in manifest.pending if rel not in self.planned}
        if not gone and not inputs and not unfinished:
            return
        manifest.drop(gone | inputs | unfinished)
        for rel in gone | inputs | unfinished | {e.thumbnail for e in stale if e.thumbnail}:
            if rel not in self.planned:
                try:
                    os.unlink(contained(manifest.folder, *rel.split("/")))
                except FileNotFoundError:
                    pass


def _one_pass(plan: Plan, x: np.ndarray, todo) -> dict[tuple, tuple[list[int], np.ndarray]]:
    """Methods that record several layers in one forward pass (feature maps) do so for all
    their layers of a chunk: one compiled graph instead of one per layer."""
    shared = {}
    for method, together in ONE_PASS.items():
        groups = [(g, jobs) for g, jobs in todo if g.method == method]
        if len(groups) < 2:
            continue
        rows = sorted({job.row for _, jobs in groups for job in jobs})
        ctx = Context(plan.model, x[rows], None, plan.layers, preprocess=plan.preprocess)
        results = together(ctx, [g.layer for g, _ in groups], **groups[0][0].options)
        shared.update({(method, g.layer): (rows, results[g.layer]) for g, _ in groups})
    return shared


def check_free_path(manifest: Manifest, path: str, known: set, overwrite: bool) -> None:
    """Raise ``FileExistsError`` if ``path`` (relative to the report) holds a file that neither
    the manifest (``known``, ``pending``) records nor ``overwrite`` lets this export replace."""
    if overwrite or path in manifest.pending or path in known:
        return
    if not manifest.folder.joinpath(path).exists():
        return
    _refuse(manifest.folder, path, "not written by vizkit export")


def image_infos(
    plan: Plan, x, labels, start, paths, rows=None, predict=True, batch_size=None
) -> list[dict[str, Any]]:
    """What the report says about each image: position, input picture, prediction, target."""
    rows = list(range(len(x))) if rows is None else rows
    infos = [
        {"index": start + r, "path": p, "label": lab}
        for r, p, lab in zip(rows, paths, labels, strict=True)
    ]
    needs = plan.info.get("classifier") or any(METHODS[g.method].target for g in plan.groups)
    if not (predict and needs) or len(x) == 0:
        return infos
    classes, scores, probability = predictions(plan.model, x, plan.preprocess, batch_size)
    for r, info, k, score in zip(rows, infos, classes, scores, strict=True):
        if plan.info.get("classifier"):
            info.update(prediction=int(k), score=round(float(score), 4), probability=probability)
        info["target"] = int(k) if plan.targets is None else target_at(plan.targets, start + r)
    return infos


def file_id(image_id: str) -> str:
    """The image part of a file name: the file's name for image files, ``img042`` otherwise."""
    return image_id if not image_id.isdigit() else f"img{image_id}"


def diagnosis_of(plan: Plan, data, engine=None) -> dict[str, Any]:
    """The manifest's diagnosis of ``plan``'s model over ``data`` (on ``engine``, default
    local), or ``{"error": ...}`` with a warning for a model :func:`vizkit.diagnose` cannot
    handle."""
    if data is None:
        return {"error": "no images to diagnose"}
    try:
        on = {} if engine is None else {"engine": engine}
        diagnosis = diagnose(plan.model, data, preprocess=plan.preprocess, **on)
    except (ValueError, TypeError) as exc:
        # The figures are written by now; a model diagnose cannot handle gets a note, not a crash.
        message = " ".join(str(exc).split())
        warnings.warn(f"diagnose failed for model {plan.name!r}: {message}", stacklevel=3)
        return {"error": message}
    out = dict(diagnosis.to_dict())
    out.setdefault("summary", diagnosis.summary())
    return out


def reiterable(source, images) -> bool:
    """Whether ``images`` can be read again (for top-activating images and the diagnosis)."""
    if source.kind != "iterable":
        return True
    return iter(images) is not images


def total_figures(plans: list[Plan], count: int | None) -> int | None:
    per_layer = sum(len(p.layer_groups) for p in plans)
    per_image = sum(len(p.image_groups) for p in plans)
    if per_image and count is None:
        return None
    return per_layer + per_image * (count or 0)


def progress_bar(total: int | None, *, enabled: bool | None, desc: str = "vizkit export",
              unit: str = "fig"):  # fmt: skip
    # enabled=None lets tqdm decide: a bar on a terminal, nothing in logs and pipes.
    disable = None if enabled is None else (not enabled or total == 0)
    return tqdm(total=total, disable=disable, desc=desc, unit=unit, smoothing=0.1)


__all__ = [
    "INPUT_FOLDER",
    "Chunk",
    "Run",
    "Writer",
    "check_free_path",
    "check_layer_groups",
    "diagnosis_of",
    "file_id",
    "image_infos",
    "progress_bar",
    "reiterable",
    "total_figures",
]
