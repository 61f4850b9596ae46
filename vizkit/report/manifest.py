"""The record of an export: ``manifest.json`` plus an append-only journal, ``manifest.journal``.

The manifest is what makes exports resumable: a figure is skipped on a rerun only when an entry
with the same key (model, method, layer, image, format) and the same parameters is recorded
*and* its file is still on disk.

Rewriting ``manifest.json`` after every file would be quadratic (100,000 files, 100,000
rewrites of a growing file), so while an export runs every change is one JSON line appended to
``manifest.journal``: written straight to the operating system (a killed process loses nothing
it recorded) and ``fsync``'d in batches. :meth:`Manifest.load` reads ``manifest.json`` and
replays the journal on top (a torn last line from a kill is ignored); :meth:`Manifest.save`
compacts both into a new ``manifest.json`` and removes the journal. Every journal operation
sets or removes whole records, so replaying lines already contained in ``manifest.json`` (a
kill between the two steps of a compaction) changes nothing.

A path is listed under ``pending`` before it is written and leaves the list when its record
lands, so a file renamed into place by an interrupted run is known to be ours and may be
replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from stat import S_ISREG
from typing import Any

from ..core.files import atomic_write
from ..core.jsonutil import describe

MANIFEST_NAME = "manifest.json"
JOURNAL_NAME = "manifest.journal"
SCHEMA_VERSION = 2
SYNC_EVERY = 256  # journal records between fsyncs
SYNC_SECONDS = 2.0  # ... or seconds, whichever comes first


@dataclass
class Entry:
    """One written figure file (paths relative to the export folder, with ``/`` separators).

    ``image`` is the image's position in the stream and ``image_id`` its stable name (the file
    path relative to the folder without suffix, or the zero-padded index); both are None for
    per-layer figures. ``title`` and ``caption`` are the readable text shown in the report;
    ``notes`` what the picture does not say itself (colour map, value range, units, ...).
    ``size`` is the file's length in bytes when it was written (figures are not ``fsync``'d one
    by one: a file of another length, e.g. emptied by a power failure, is drawn again).
    """

    path: str
    method: str
    model: str
    layer: str | None
    image: int | None
    format: str
    parameters: dict[str, Any]
    seconds: float
    thumbnail: str | None = None
    image_id: str | None = None
    variant: str | None = None
    title: str = ""
    caption: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    size: int | None = None

    @property
    def key(self) -> tuple:
        """What the figure shows: ``(model, method, layer, image id, format)``."""
        image = self.image_id if self.image_id is not None else self.image
        return (self.model, self.method, self.layer, image, self.format)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        return cls(**{k: v for k, v in raw.items() if k in _ENTRY_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        # Shallow (parameters and notes are JSON values already): dataclasses.asdict deep-copies,
        # which is most of the time of writing a 100,000-file manifest.
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def file_size(path: Path) -> int | None:
    """The length of the regular file ``path``, or None if there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size if S_ISREG(stat.st_mode) else None


@dataclass
class Manifest:
    """In-memory manifest of one export folder.

    Changes go through :meth:`record`, :meth:`record_image`, :meth:`mark_pending` and
    :meth:`drop`, which append to the journal; :meth:`save` compacts.
    """

    folder: Path
    entries: dict[str, Entry] = field(default_factory=dict)  # by relative path
    pending: set[str] = field(default_factory=set)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnosis: dict[str, Any] = field(default_factory=dict)
    # Per model, the "Which map to trust" card of vizkit.evaluate: {"params", "table",
    # "figures"} (or {"params", "error"}).
    trust: dict[str, Any] = field(default_factory=dict)
    # Free-standing figures added with :func:`vizkit.report.add_figures`: section -> list of
    # {"title", "path", "thumbnail"} (paths relative to the folder).
    extras: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # Sections of the index (:func:`vizkit.report.add_section`), by key.
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per model, per image id: position, input picture, true label, prediction, target.
    images: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # HTML pages written for the index (relative path -> SHA-1 of the text).
    pages: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    _by_key: dict[tuple, Entry] = field(default_factory=dict, repr=False)
    _journal: Journal | None = field(default=None, repr=False)
    _captured: list[dict[str, Any]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self._by_key = {e.key: e for e in self.entries.values()}

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: Path, *, journal: bool = True) -> Manifest:
        """Read ``folder/manifest.json`` and replay ``manifest.journal`` (unless ``journal`` is
        False: the state of the last compaction); nothing gives an empty manifest.

        Raises
        ------
        ValueError
            If ``manifest.json`` exists but is not a vizkit manifest (so that nothing is
            overwritten on a guess).
        """
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        manifest = cls(folder)
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                entries = {e["path"]: Entry.from_dict(e) for e in raw["files"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{str(path)!r} is not a readable vizkit manifest ({exc}); "
                    "move it away or choose another output folder"
                ) from exc
            manifest = cls(
                folder,
                entries=entries,
                pending=set(raw.get("pending", [])),
                models=dict(raw.get("models", {})),
                diagnosis=dict(raw.get("diagnosis", {})),
                trust=dict(raw.get("trust", {})),
                extras={str(k): list(v) for k, v in dict(raw.get("extras", {})).items()},
                sections=dict(raw.get("sections", {})),
                images={str(k): dict(v) for k, v in dict(raw.get("images", {})).items()},
                pages=dict(raw.get("pages", {})),
                settings=dict(raw.get("settings", {})),
                created=float(raw.get("created", time.time())),
            )
        for record in Journal.read(folder / JOURNAL_NAME) if journal else ():
            manifest._apply(record)
        return manifest

    def matches(self, path: str, key: tuple, parameters: dict[str, Any]) -> Entry | None:
        """The recorded entry for ``path`` if it was made with ``key`` and ``parameters``."""
        entry = self.entries.get(path)
        if entry is None or entry.key != key or entry.parameters != parameters:
            return None
        return entry

    def find(self, path: str, key: tuple, parameters: dict[str, Any]) -> Entry | None:
        """Like :meth:`matches`, and only if the file (and its thumbnail) is still on disk."""
        entry = self.matches(path, key, parameters)
        if entry is None or not self.on_disk(entry):
            return None
        return entry

    def by_key(self, key: tuple) -> Entry | None:
        """The entry recorded last for ``key`` (whatever its path and parameters)."""
        return self._by_key.get(key)

    def on_disk(self, entry: Entry) -> bool:
        """Whether the file of ``entry`` (of its recorded size) and its thumbnail (not empty)
        exist."""
        size = file_size(self.folder / entry.path)
        if not size or (entry.size is not None and size != entry.size):
            return False
        return not entry.thumbnail or bool(file_size(self.folder / entry.thumbnail))

    def known_paths(self) -> set[str]:
        """Every file this manifest records: figures, thumbnails, input pictures, pages."""
        paths = set(self.entries) | {e.thumbnail for e in self.entries.values() if e.thumbnail}
        for per_model in self.images.values():
            paths |= {i["path"] for i in per_model.values() if i.get("path")}
        for card in self.trust.values():
            for item in card.get("figures", []) if isinstance(card, dict) else ():
                paths |= {item.get("path"), item.get("thumbnail")} - {None}
        return paths | set(self.pages)

    # -- changing (journaled) -------------------------------------------------------------------
    def record(self, entry: Entry) -> None:
        """Add (or replace) the entry at ``entry.path``; its paths leave ``pending``."""
        self._log({"op": "file", "entry": entry.to_dict()})

    def record_model(self, name: str, info: dict[str, Any]) -> None:
        """Set what is known about a model (its folder name, weights digest, layers, ...)."""
        self._log({"op": "model", "name": name, "info": info})

    def record_image(self, model: str, image_id: str, info: dict[str, Any]) -> None:
        """Set what is known about one image of ``model`` (its input picture leaves pending)."""
        self._log({"op": "image", "model": model, "id": image_id, "info": info})

    def mark_pending(self, paths) -> None:
        """Note that ``paths`` are about to be written."""
        self._log({"op": "pending", "paths": sorted(paths)})

    def drop(self, paths) -> None:
        """Forget the figures at ``paths`` (and images whose input picture is one of them)."""
        self._log({"op": "drop", "paths": sorted(paths)})

    @contextlib.contextmanager
    def captured(self) -> Iterator[list[dict[str, Any]]]:
        """While inside, changes are neither applied nor journaled but collected in the list
        this yields (journal records, for :meth:`replay` by the process that owns the
        journal): how a distributed export's worker reports what it wrote."""
        records: list[dict[str, Any]] = []
        before, self._captured = self._captured, records
        try:
            yield records
        finally:
            self._captured = before

    def replay(self, records) -> None:
        """Apply and journal ``records`` collected by :meth:`captured`."""
        for record in records:
            self._log(record)

    def _log(self, record: dict[str, Any]) -> None:
        # Records hold JSON values already (parameters are normalised), so they are applied as
        # they are; replaying the journal gives the same state.
        if self._captured is not None:
            self._captured.append(record)
            return
        line = json.dumps(record, separators=(",", ":"), default=describe)
        self._apply(record)
        if self._journal is None:
            self._journal = Journal(self.folder / JOURNAL_NAME)
        self._journal.append(line)

    def _apply(self, record: dict[str, Any]) -> None:
        op = record.get("op")
        if op == "file":
            entry = Entry.from_dict(record["entry"])
            old = self.entries.get(entry.path)
            if old is not None and self._by_key.get(old.key) is old:
                del self._by_key[old.key]
            self.entries[entry.path] = entry
            self._by_key[entry.key] = entry
            self.pending.difference_update((entry.path, entry.thumbnail))
        elif op == "model":
            self.models[record["name"]] = dict(record["info"])
        elif op == "image":
            info = dict(record["info"])
            self.images.setdefault(record["model"], {})[record["id"]] = info
            self.pending.discard(info.get("path"))
        elif op == "pending":
            self.pending.update(record["paths"])
        elif op == "drop":
            gone = set(record["paths"])
            for path in gone & set(self.entries):
                entry = self.entries.pop(path)
                if self._by_key.get(entry.key) is entry:
                    del self._by_key[entry.key]
            for per_model in self.images.values():
                for image_id in [k for k, v in per_model.items() if v.get("path") in gone]:
                    del per_model[image_id]
            self.pending.difference_update(gone)

    def sync(self) -> None:
        """Make every journaled change durable (``fsync``)."""
        if self._journal is not None:
            self._journal.sync()

    def close(self) -> None:
        """Sync and close the journal (changes stay in it until the next :meth:`save`)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- writing --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "schema": SCHEMA_VERSION,
            "vizkit": __version__,
            "created": self.created,
            "updated": time.time(),
            "settings": self.settings,
            "models": self.models,
            "diagnosis": self.diagnosis,
            "trust": self.trust,
            "sections": self.sections,
            "extras": self.extras,
            "images": self.images,
            "pages": self.pages,
            "pending": sorted(self.pending),
            "files": [e.to_dict() for e in self.entries.values()],
        }

    def dumps(self) -> str:
        """The text of ``manifest.json``: one file and one image per line.

        The big lists go through the C JSON encoder line by line (``indent`` would send all of
        it through the pure-Python one, seconds for 100,000 files).
        """
        data = self.to_dict()
        files, images = data.pop("files"), data.pop("images")
        line = json.JSONEncoder(separators=(",", ":"), default=describe).encode
        head = json.dumps(data, indent=1, default=describe)
        per_model = ",".join(
            f"\n  {line(model)}: {{"
            + ",".join(f"\n   {line(image_id)}: {line(info)}" for image_id, info in infos.items())
            + "\n  }"
            for model, infos in images.items()
        )
        rows = ",".join(f"\n  {line(f)}" for f in files)
        return f'{head[:-2]},\n "images": {{{per_model}\n }},\n "files": [{rows}\n ]\n}}\n'

    def save(self) -> None:
        """Compact: write the whole state to ``manifest.json`` (atomically), then remove the
        journal."""
        text = self.dumps()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        atomic_write(self.folder / MANIFEST_NAME, text)
        try:
            os.unlink(self.folder / JOURNAL_NAME)
        except FileNotFoundError:
            pass


class Journal:
    """Append-only JSON lines: one ``os.write`` per record, ``fsync`` every :data:`SYNC_EVERY`
    records or :data:`SYNC_SECONDS` seconds and on :meth:`close`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # O_APPEND: every record lands after the last, whatever happened before.
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as exc:
            raise OSError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") from exc
        self._unsynced = 0
        self._synced_at = time.monotonic()
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write(b"\n")  # end a line torn by a kill, so the next record stands alone

    def append(self, line: str) -> None:
        """Append one record, already serialised as a single line of JSON."""
        self._write((line + "\n").encode())
        self._unsynced += 1
        if self._unsynced >= SYNC_EVERY or time.monotonic() - self._synced_at > SYNC_SECONDS:
            self.sync()

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise OSError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") from exc

    def sync(self) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """The records in ``path`` (none if it is missing); a torn line (a kill in the middle of
        a write) is skipped."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return []
        records = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def normalize(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` as they read back from JSON, so that recorded and new ones compare equal."""
    return json.loads(json.dumps(parameters, sort_keys=True, default=describe))
