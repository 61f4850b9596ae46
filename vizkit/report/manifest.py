"""``manifest.json``: the record of every file an export wrote, updated after each file.

The manifest is what makes exports resumable: a file is skipped on a rerun only when an entry
with the same key (model, method, layer, image, format) and the same parameters is recorded
*and* the file is still on disk. A path is listed under ``"pending"`` while it is being written,
so a file left behind by an interrupted run is known to be ours and may be replaced.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.files import atomic_write
from ..core.jsonutil import describe

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclass
class Entry:
    """One written file (paths are relative to the export folder, with ``/`` separators)."""

    path: str
    method: str
    model: str
    layer: str | None
    image: int | None
    format: str
    parameters: dict[str, Any]
    seconds: float
    thumbnail: str | None = None

    @property
    def key(self) -> tuple:
        return (self.model, self.method, self.layer, self.image, self.format)


@dataclass
class Manifest:
    """In-memory manifest; :meth:`save` writes it atomically."""

    folder: Path
    entries: dict[str, Entry] = field(default_factory=dict)  # by relative path
    pending: set[str] = field(default_factory=set)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnosis: dict[str, Any] = field(default_factory=dict)
    # Free-standing figures added with :func:`vizkit.report.add_figures`: section -> list of
    # {"title", "path", "thumbnail"} (paths relative to the folder).
    extras: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """Read ``folder/manifest.json``; a missing file gives an empty manifest.

        Raises
        ------
        ValueError
            If the file exists but is not a vizkit manifest (so that nothing is overwritten
            on a guess).
        """
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        if not path.exists():
            return cls(folder)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = {e["path"]: Entry(**e) for e in raw["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{str(path)!r} is not a readable vizkit manifest ({exc}); "
                "move it away or choose another output folder"
            ) from exc
        return cls(
            folder,
            entries=entries,
            pending=set(raw.get("pending", [])),
            models=dict(raw.get("models", {})),
            diagnosis=dict(raw.get("diagnosis", {})),
            extras={str(k): list(v) for k, v in dict(raw.get("extras", {})).items()},
            created=float(raw.get("created", time.time())),
        )

    def matches(self, path: str, key: tuple, parameters: dict[str, Any]) -> Entry | None:
        """The recorded entry for ``path`` if it was made with ``key`` and ``parameters``."""
        entry = self.entries.get(path)
        if entry is None or entry.key != key or entry.parameters != parameters:
            return None
        return entry

    def find(self, path: str, key: tuple, parameters: dict[str, Any]) -> Entry | None:
        """Like :meth:`matches`, and only if the file (and its thumbnail) is still on disk."""
        entry = self.matches(path, key, parameters)
        if entry is None:
            return None
        if not (self.folder / entry.path).is_file():
            return None
        if entry.thumbnail and not (self.folder / entry.thumbnail).is_file():
            return None
        return entry

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "schema": SCHEMA_VERSION,
            "vizkit": __version__,
            "created": self.created,
            "updated": time.time(),
            "models": self.models,
            "diagnosis": self.diagnosis,
            "extras": self.extras,
            "pending": sorted(self.pending),
            "files": [asdict(e) for e in self.entries.values()],
        }

    def save(self) -> None:
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False, default=describe)
        atomic_write(self.folder / MANIFEST_NAME, text + "\n")


def normalize(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` as they read back from JSON, so that recorded and new ones compare equal."""
    return json.loads(json.dumps(parameters, sort_keys=True, default=describe))
