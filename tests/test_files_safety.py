"""Files: corrupt or foreign model files, Lambda safe mode, names that try to leave the output
folder, a full or read-only disk in the middle of an export, and resuming an interrupted export.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from pathlib import Path

import h5py
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
from helpers import random_images
from hypothesis import given, settings
from report_helpers import load, recorded_files

import models
import vizkit
from vizkit.cli import main as cli_main
from vizkit.core import files as _files
from vizkit.core.files import contained, safe_name
from vizkit.render import tasks as render_tasks

X = random_images(2, (8, 8, 1))


def tiny(name: str = "tiny", conv_names=("conv",)) -> keras.Model:
    inp = keras.Input((8, 8, 1))
    h = inp
    for conv in conv_names:
        h = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name=conv)(h)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="out")(g), name=name)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "good.keras"
    tiny().save(path)
    return path


# -- model files --------------------------------------------------------------------------------
def _corrupt_files(folder: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    files = {
        "empty.keras": b"",
        "random.keras": np.random.default_rng(0).bytes(2048),
        "truncated.keras": data[: len(data) // 2],
        "text.keras": b"this is not a model\n",
        "png.keras": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "empty.h5": b"",
        "truncated.h5": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "text.h5": b"hello",
    }
    out = {}
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
        out[name] = folder / name
    # A zip that is not a Keras archive, and a Keras archive with one flipped byte.
    with zipfile.ZipFile(folder / "foreign.keras", "w") as z:
        z.writestr("readme.txt", "hi")
    out["foreign.keras"] = folder / "foreign.keras"
    flipped = bytearray(data)
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    flipped[start] ^= 0xFF
    (folder / "flipped.keras").write_bytes(bytes(flipped))
    out["flipped.keras"] = folder / "flipped.keras"
    # An HDF5 file that holds data but no model.
    with h5py.File(folder / "data.h5", "w") as f:
        f["x"] = np.arange(3)
    out["data.h5"] = folder / "data.h5"
    return out


CORRUPT = [
    "empty.keras",
    "random.keras",
    "truncated.keras",
    "text.keras",
    "png.keras",
    "foreign.keras",
    "flipped.keras",
    "empty.h5",
    "truncated.h5",
    "text.h5",
    "data.h5",
]


@pytest.fixture(scope="module")
def corrupt(saved, tmp_path_factory) -> dict[str, Path]:
    return _corrupt_files(tmp_path_factory.mktemp("corrupt"), saved)


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_or_foreign_model_file_is_a_clear_error(corrupt, name):
    with pytest.raises(ValueError) as info:
        models.load_model(corrupt[name])
    message = str(info.value)
    assert str(corrupt[name]) in message, message


@pytest.mark.parametrize("name", ["model.txt", "model.npy", "folder.keras"])
def test_non_model_paths_are_refused(tmp_path, name):
    path = tmp_path / name
    path.mkdir() if name.endswith(".keras") else path.write_text("x")
    with pytest.raises(ValueError, match=r"not a model file.*\.keras"):
        models.load_model(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        models.load_model(tmp_path / "nope.keras")


def test_good_file_loads_and_cli_reports_corrupt_file_cleanly(saved, corrupt, capsys):
    assert isinstance(models.load_model(saved), keras.Model)
    code = cli_main(["diagnose", str(corrupt["truncated.keras"]), "--dataset", "digits"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "truncated.keras" in err


# -- Lambda layers and safe mode -----------------------------------------------------------------
@pytest.fixture()
def lambda_file(tmp_path) -> tuple[Path, Path]:
    """A model whose Lambda layer writes ``marker`` when its code runs."""
    marker = tmp_path / "code-ran"

    # A Python lambda (not a def), so that Keras stores its bytecode in the file; the marker path
    # is a constant of that bytecode.
    spy = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")

    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Lambda(spy)(inp)))
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    marker.unlink()  # building the model ran it once; only loading counts from here
    return path, marker


def test_lambda_code_does_not_run_on_load_by_default(lambda_file):
    path, marker = lambda_file
    with pytest.raises(ValueError, match=r"Lambda.*safe_mode=False"):
        models.load_model(path)
    assert not marker.exists(), "loading in safe mode executed the Lambda's code"


def test_lambda_code_runs_only_with_the_explicit_opt_out(lambda_file):
    path, marker = lambda_file
    model = models.load_model(path, safe_mode=False)
    assert isinstance(model, keras.Model)
    assert marker.exists()  # the opt-out really runs stored code: that is why it is off by default


def test_safe_mode_is_the_default_everywhere(lambda_file, capsys):
    import inspect

    assert inspect.signature(models.load_model).parameters["safe_mode"].default is True
    path, marker = lambda_file
    code = cli_main(["diagnose", str(path), "--dataset", "digits"])
    assert code == 1 and not marker.exists()
    err = capsys.readouterr().err
    assert "Lambda" in err and "Traceback" not in err


# -- names that try to leave the output folder ----------------------------------------------------
ODD_NAMES = [
    "..",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\Windows\\evil",
    "a\\..\\..\\b",
    "\u202eevil.png",
    "nul\x00byte",
    "CON",
    "ｆｕｌｌｗｉｄｔｈ",
    "日本語",
    "",
    "." * 300,
]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(name=st.text(max_size=60))
def test_safe_name_never_leaves_the_folder(name):
    slug = safe_name(name)
    assert slug and "/" not in slug and "\\" not in slug and "\x00" not in slug
    assert slug not in (".", "..") and not slug.startswith(".")
    assert len(slug) <= 60
    root = Path("/tmp/vizkit-root")
    assert contained(root, slug).parent == root.resolve()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(a=st.text(max_size=20), b=st.text(max_size=20))
def test_safe_names_of_different_names_differ(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


@pytest.mark.parametrize("bad", ["..", "../x", "/etc", "a/../../b", "x\x00y"])
def test_contained_refuses_escapes(tmp_path, bad):
    parts = [bad] if bad.startswith("/") else bad.split("/")
    with pytest.raises(ValueError, match=r"relative|leave"):
        contained(tmp_path, *parts)


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # CJK/fullwidth in titles
@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_export_with_odd_model_name_stays_inside(tmp_path, name):
    out = tmp_path / "out"
    index = vizkit.export(
        tiny(), X, out, methods=["filters"], model_name=name, progress=False, diagnose=False
    )
    assert index.parent == out.resolve()
    _assert_all_inside(tmp_path, out)


def test_export_with_odd_layer_names_stays_inside(tmp_path):
    # Keras refuses "/" in layer names, but "..", backslashes, bidi controls and NUL get through.
    names = ("..", "a\\..\\..\\b", "\u202egnp.exe", "CON", "nul\x00")
    out = tmp_path / "out"
    model = tiny("odd", conv_names=names)
    vizkit.export(model, X, out, methods=["filters"], layers="all", progress=False, diagnose=False)
    _assert_all_inside(tmp_path, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len({f["path"] for f in manifest["files"]}) == len(names)  # no two layers share a file


def _assert_all_inside(tmp_path: Path, out: Path) -> None:
    outside = [p for p in tmp_path.rglob("*") if out not in p.parents and p != out]
    assert not outside, f"files written outside the output folder: {outside}"
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.is_file()]


# -- full or read-only disk, interrupted export ---------------------------------------------------
METHODS = ["filters", "feature_maps"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _fail_writes_after(monkeypatch, n_ok: int, exc: BaseException) -> dict:
    """Make every file write after the first ``n_ok`` fail with ``exc`` (disk full, ...): the
    atomic ones (their rename) and the export's figures and thumbnail links (straight to their
    names)."""
    real_replace, real_redo = _files.os.replace, render_tasks.write_redoable
    real_link = render_tasks.link_redoable
    count = {"n": 0, "written": []}

    def gate(path):
        count["n"] += 1
        if count["n"] > n_ok and isinstance(exc, OSError):  # as the OS reports it: with the path
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path))
        if count["n"] > n_ok:
            raise exc

    def replace(src, dst):
        gate(dst)
        real_replace(src, dst)
        count["written"].append(Path(dst))

    def redo(path, data):
        gate(path)
        real_redo(path, data)
        count["written"].append(Path(path))

    def link(source, path):
        gate(path)
        real_link(source, path)
        count["written"].append(Path(path))

    monkeypatch.setattr(_files.os, "replace", replace)
    monkeypatch.setattr(render_tasks, "write_redoable", redo)
    monkeypatch.setattr(render_tasks, "link_redoable", link)
    return count


@pytest.mark.parametrize(
    "exc, fragment",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left"),
        (PermissionError(errno.EROFS, "Read-only file system"), "Read-only"),
    ],
    ids=["disk-full", "read-only"],
)
def test_full_or_read_only_folder_fails_cleanly_and_keeps_earlier_files(
    tmp_path, monkeypatch, exc, fragment
):
    model = tiny()
    vizkit.export(model, X, tmp_path, methods=["filters"], progress=False, diagnose=False)
    before = _snapshot(tmp_path)
    _fail_writes_after(monkeypatch, 0, exc)
    with pytest.raises(OSError, match=fragment) as info:
        vizkit.export(model, X, tmp_path, methods=METHODS, progress=False, diagnose=False)
    assert str(tmp_path) in str(info.value)
    after = _snapshot(tmp_path)
    # Every earlier file is byte-identical and no temporary file is left behind.
    assert {k: v for k, v in after.items() if k in before and k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"
    }
    assert not [k for k in after if k.endswith(".tmp")]
    json.loads((tmp_path / "manifest.json").read_text())  # still valid JSON


def test_unwritable_output_path_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write to output folder"):
        vizkit.export(tiny(), X, blocker / "out", methods=["filters"], progress=False)


def test_interrupted_export_resumes_where_it_stopped(tmp_path, monkeypatch):
    model = tiny()
    reference = tmp_path / "reference"
    vizkit.export(model, X, reference, methods=METHODS, progress=False, diagnose=False)
    expected = sorted(k for k in _snapshot(reference) if k != "index.html")

    out = tmp_path / "out"
    _fail_writes_after(monkeypatch, 6, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        vizkit.export(model, X, out, methods=METHODS, progress=False, diagnose=False)
    monkeypatch.undo()
    done = _snapshot(out)
    assert 0 < len([k for k in done if k.endswith(".png")]) < len(expected)
    manifest = load(out)  # manifest.json and the journal of the interrupted run

    count = _fail_writes_after(monkeypatch, 10**6, OSError())
    vizkit.export(model, X, out, methods=METHODS, progress=False, diagnose=False)
    final = _snapshot(out)
    assert sorted(k for k in final if k != "index.html") == expected
    # Figures recorded in the manifest before the interruption are kept as they were, not redone;
    # the others (including one written but not yet recorded) are written now.
    recorded = recorded_files(manifest)
    assert recorded and all(final[k] == done[k] for k in recorded)
    rewritten = {str(p.relative_to(out.resolve())) for p in count["written"]}
    pngs = {k for k in expected if k.endswith(".png")}
    assert {k for k in rewritten if k.endswith(".png")} == pngs - recorded
    assert not [k for k in final if k.endswith(".tmp")]
    assert os.path.isfile(out / "index.html")


def test_redoable_writes_go_straight_to_new_names_and_replace_old_ones_atomically(
    tmp_path, monkeypatch
):
    target = tmp_path / "sub" / "figure.png"  # the folder is made on the way
    old_mask = os.umask(0o022)
    try:
        _files.write_redoable(target, b"first")
        assert target.read_bytes() == b"first" and (target.stat().st_mode & 0o777) == 0o644
        renamed = []
        real_replace = _files.os.replace
        monkeypatch.setattr(
            _files.os, "replace", lambda a, b: renamed.append(b) or real_replace(a, b)
        )
        _files.write_redoable(target, b"second")  # taken: through a temporary name
        assert target.read_bytes() == b"second" and renamed == [target]
        _files.link_redoable(target, tmp_path / "sub" / "thumb.png")
        assert os.path.samefile(target, tmp_path / "sub" / "thumb.png")
    finally:
        os.umask(old_mask)


def test_a_failed_redoable_write_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files.os, "write", full)
    target = tmp_path / "figure.png"
    with pytest.raises(OSError, match=r"cannot write '.*figure\.png': No space left"):
        _files.write_redoable(target, b"x" * 100)
    assert not list(tmp_path.iterdir())


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    (tmp_path / "a").mkdir()
    left = tmp_path / "a" / f".img000_saliency.{dead_pid}.0123abcd.tmp.png"
    live = tmp_path / f".index.{os.getpid()}.89abcdef.tmp.html"
    mine = tmp_path / ".hidden.123.notes.tmp"  # not one of ours: another pattern
    for path in (left, live, mine):
        path.write_bytes(b"partial")
    assert _files.remove_abandoned(tmp_path) == 1
    assert not left.exists() and live.exists() and mine.exists()
