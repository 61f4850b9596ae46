"""File-system helpers for exports: safe names, contained paths and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
# Names Windows refuses whatever the extension, and the export's own thumbnail folder; a slug
# equal to one of them gets the hash suffix too.
_RESERVED = {"con", "prn", "aux", "nul", "thumbs"} | {
    f"{p}{i}" for p in ("com", "lpt") for i in range(10)
}
_MAX_SLUG = 48


def safe_name(name: object) -> str:
    """A file-name slug for ``name`` that cannot leave its folder.

    Only lowercase ASCII letters, digits, ``.``, ``_`` and ``-`` survive; separators (``/``,
    ``\\``), ``..``, NUL and other odd characters become ``_``. Whenever the slug differs from the
    original name, a short hash of the original is appended so that different names (``a/b`` and
    ``a_b``, ``Conv`` and ``conv``) never share a file.

    >>> safe_name("conv1")
    'conv1'
    >>> safe_name("../evil").startswith("evil-")
    True
    """
    text = str(name)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("_", ascii_text.lower()).strip("._-")[:_MAX_SLUG].strip("._-")
    if slug != text or slug in _RESERVED or not slug:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        slug = f"{slug}-{digest}" if slug else digest
    return slug


def contained(root: Path, *parts: str) -> Path:
    """``root / parts...`` after checking that the result stays inside ``root``.

    Raises
    ------
    ValueError
        If a part is absolute or the joined path resolves outside ``root`` (``..``, symlinks).
    """
    root = Path(root).resolve()
    for part in parts:
        if Path(part).is_absolute() or "\x00" in part:
            raise ValueError(f"path part {part!r} must be relative and free of NUL characters")
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"path {path} would leave the output folder {root}")
    return path


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove that files can be written into it.

    Raises
    ------
    OSError
        With the folder named and the reason, when it cannot be created or written to.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vizkit-probe-"):
            pass
    except OSError as exc:
        raise OSError(
            f"cannot write to output folder {str(folder)!r}: {exc.strerror or exc}; "
            "choose a writable folder"
        ) from exc
    return folder.resolve()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder (same file system) which is then
    renamed over ``path`` with :func:`os.replace`. On any failure the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OSError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
        raise
