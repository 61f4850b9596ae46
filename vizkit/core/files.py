"""Files: safe names, contained paths and the one atomic write every writer in the project uses."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
# Names Windows refuses whatever the extension, and the export's own thumbnail folder; a slug
# equal to one of them gets the hash suffix too.
_RESERVED = {"con", "prn", "aux", "nul", "thumbs"} | {
    f"{p}{i}" for p in ("com", "lpt") for i in range(10)
}
_MAX_SLUG = 48


def safe_name(name: object) -> str:
    """A file-name slug for ``name`` that cannot leave its folder, unique without context.

    Only lowercase ASCII letters, digits, ``.``, ``_`` and ``-`` survive; separators (``/``,
    ``\\``), ``..``, NUL and other odd characters become ``_``. Whenever the slug differs from the
    original name, a short hash of the original is appended so that different names (``a/b`` and
    ``a_b``, ``Conv`` and ``conv``) never share a file, wherever they are used. Where the names
    of one folder are known together, :class:`UniqueNames` gives the same slugs and appends the
    hash only on a real collision.

    >>> safe_name("conv1")
    'conv1'
    >>> safe_name("../evil").startswith("evil-")
    True
    """
    text = str(name)
    slug = _slug(text)
    if slug != text or slug in _RESERVED or not slug:
        slug = _hashed(slug, text)
    return slug


class UniqueNames:
    """Readable file-name slugs for the names of one folder, a hash suffix only on a collision.

    ``names(name)`` is :func:`safe_name`'s slug of ``name`` without a hash (``"Block 1/Conv"``
    -> ``"block_1_conv"``), unless an *other* name of this folder already has that slug, the
    slug is empty, or it is reserved (``con``, ``nul``, ``thumbs``, ...): then the first eight
    hex digits of the SHA-1 of the name are appended (``"block_1_conv-1f2e3d4c"``). The first
    name to claim a slug keeps it, so the same names in the same order always get the same
    slugs; a name asked again gets its slug again.

    >>> names = UniqueNames()
    >>> names("astronaut"), names("Astronaut").startswith("astronaut-"), names("astronaut")
    ('astronaut', True, 'astronaut')

    Parameters
    ----------
    names : iterable of str
        Names to give slugs first, in order (e.g. every layer of a model, so that the slugs
        do not depend on which layers are asked for).
    reserved : iterable of str
        More slugs no name may take bare (file names the folder already uses).
    """

    def __init__(self, names=(), *, reserved=()) -> None:
        self._owner: dict[str, str] = {}  # slug -> the name that has it
        self._slug: dict[str, str] = {}  # name -> its slug
        self._reserved = _RESERVED | {str(r) for r in reserved}
        for name in names:
            self(name)

    def claim(self, name: object, slug: str) -> bool:
        """Give ``name`` the slug ``slug`` (one recorded earlier), if no other name has it.

        Returns whether it did; a name that already has a slug keeps it.
        """
        text = str(name)
        if text in self._slug or self._owner.get(slug, text) != text or not slug:
            return self._slug.get(text) == slug
        self._owner[slug] = text
        self._slug[text] = slug
        return True

    def __call__(self, name: object) -> str:
        text = str(name)
        found = self._slug.get(text)
        if found is not None:
            return found
        slug = _slug(text)
        if not slug or slug in self._reserved or slug in self._owner:
            slug = _hashed(slug, text)
            width = 8
            while slug in self._owner:  # a plain name that looks like a hashed one: lengthen
                width += 4
                slug = _hashed(_slug(text), text, width)
        self._owner[slug] = text
        self._slug[text] = slug
        return slug


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE.sub("_", ascii_text.lower()).strip("._-")[:_MAX_SLUG].strip("._-")


def _hashed(slug: str, text: str, width: int = 8) -> str:
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:width]
    return f"{slug}-{digest}" if slug else digest


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


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, overwrite: bool = True, durable: bool = True
) -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes ``path`` only if the block succeeds.

    The caller (or a library such as Keras or matplotlib) creates the temporary file; it keeps
    ``path``'s suffix, since some writers check it, and is created like any other file, so it
    honours the umask (``0644`` under umask 022). On success it is synced (``fsync``, unless
    ``durable=False``) and renamed over ``path`` (readers see the old file or the whole new one,
    and a killed process leaves one or the other); on failure it is removed and ``path`` is left
    as it was. ``durable=False`` is for files that can be made again and are checked when they
    are reused (the export's figures: an ``fsync`` costs milliseconds, more than drawing a small
    figure), since after a power failure such a file may be empty. With ``overwrite=False`` the final step is a hard link, so a file
    that appeared at ``path`` meanwhile is never replaced (``FileExistsError``).

    Raises
    ------
    FileExistsError
        ``overwrite=False`` and ``path`` exists.
    OSError
        Naming ``path`` and the reason, when the folder cannot be created or written.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):  # one stat; mkdir only when it is missing
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp{path.suffix}")
    renamed = False
    try:
        yield tmp
        if durable:
            _sync(tmp)
        if overwrite or not _link(tmp, path):
            os.replace(tmp, path)
            renamed = True
    except BaseException as exc:
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise OSError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
        raise
    finally:
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")


def remove_abandoned(folder: str | os.PathLike) -> int:
    """Remove the temporary files of :func:`atomic_path` under ``folder`` whose process is no
    longer running on this machine (left by a killed writer); returns how many.

    For a folder no other machine writes into at the same time (an export's report folder
    while its export starts).
    """
    removed = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            match = _TEMPORARY.match(name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(parent, name))
                    removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill(pid, 0) would send Ctrl+C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid we cannot ask about: leave its files
    return True


def atomic_write(
    path: str | os.PathLike, data: bytes | str, *, overwrite: bool = True, durable: bool = True
) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; see :func:`atomic_path`."""
    payload = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
    with atomic_path(path, overwrite=overwrite, durable=durable) as tmp:
        # O_EXCL: the random name is ours alone; mode 0o666 lets the umask decide, like `cp`.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, payload)
        finally:
            os.close(fd)


def write_redoable(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``, straight to its name when no file is there yet, else as
    :func:`atomic_write` (not synced) does.

    A new file costs one directory operation instead of two (a temporary name, then a rename),
    and renames into one folder from several threads wait on each other. A process killed
    mid-write may leave a half-written new file (a failed write removes it), so this is only
    for files that are marked pending in a journal before they are written and checked (their
    size) when they are reused: the export's figures. It honours the umask like
    :func:`atomic_write`.
    """
    try:
        fd = _create(path)
    except FileExistsError:
        atomic_write(path, data, durable=False)
        return
    except OSError as exc:
        raise OSError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    try:
        try:
            _write_all(fd, memoryview(data))
        finally:
            os.close(fd)
    except BaseException as exc:  # a failed write (a full disk) leaves no half-written file
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, OSError):
            raise OSError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}") from exc
        raise


def link_redoable(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` a second name of ``source``: a hard link straight to the name when it is
    free, else :func:`atomic_link` (not synced); for the files :func:`write_redoable` is for."""
    try:
        os.link(source, path)
    except OSError:  # taken, no hard links here, or no folder yet: the careful way
        atomic_link(source, path, durable=False)


def _create(path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o666)  # mode 0o666 lets the umask decide, like `cp`
    except FileNotFoundError:  # the folder is not there yet
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.open(path, flags, 0o666)


def _write_all(fd: int, payload: memoryview) -> None:
    while payload:  # os.write may write less than asked (a full disk, a signal)
        written = os.write(fd, payload)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        payload = payload[written:]


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_link(
    source: str | os.PathLike, path: str | os.PathLike, *, durable: bool = True
) -> None:
    """Make ``path`` a second name of the finished file ``source``, atomically.

    A hard link (no data is copied or synced again) renamed over ``path``; where the file system
    has no hard links, a copy of the bytes written with :func:`atomic_write`.
    """
    try:
        with atomic_path(path, durable=durable) as tmp:
            os.link(source, tmp)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or not _no_links(exc):
            raise
        atomic_write(path, Path(source).read_bytes(), durable=durable)


def _no_links(exc: OSError) -> bool:
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    return cause.errno in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP)


def _sync(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link(tmp: Path, path: Path) -> bool:
    """Hard-link ``tmp`` to ``path``; False where the file system has no hard links."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"{str(path)!r} appeared while it was being written; pass overwrite=True to replace it"
        ) from None
    except OSError:
        return False
    return True
