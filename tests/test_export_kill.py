"""An export killed with SIGKILL at a random point resumes: every recorded file is complete, the
rerun finishes the report and computes nothing that was already recorded."""

import importlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from report_helpers import load

from vizkit.report import export
from vizkit.report.manifest import JOURNAL_NAME, Manifest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["saliency", "occlusion"]
N_IMAGES = 24

CHILD = r"""
import importlib, sys, time
import numpy as np
import models, vizkit
from vizkit.render import tasks

real, real_many = tasks.render, tasks.render_many
def slow(*args, **kwargs):  # a slow disk: the kill lands in the middle of the run
    time.sleep(0.03)
    return real(*args, **kwargs)
def slow_many(kind, results, images=None):  # the same for the figures drawn together
    time.sleep(0.03 * len(results))
    return real_many(kind, results, images)
tasks.render, tasks.render_many = slow, slow_many
# Small chunks: figures are recorded a few at a time (a chunk's figures of a method are drawn
# together), so the kill lands between records rather than after the last one.
importlib.import_module("vizkit.report.export").chunk_size = lambda models: 4

model = models.load_model(sys.argv[1])
vizkit.export(model, np.load(sys.argv[2]), sys.argv[3], methods=sys.argv[4].split(","),
              progress=False, diagnose=False, workers=2)
"""


def _file_records(folder: Path) -> int:
    try:
        return (folder / JOURNAL_NAME).read_bytes().count(b'"op":"file"')
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_sigkill_at_a_random_point_then_resume(tmp_path, monkeypatch, seed):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out, name="tiny")
    model.save(tmp_path / "tiny.keras")
    images = np.random.default_rng(0).random((N_IMAGES, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    report = tmp_path / "report"
    total = N_IMAGES * len(METHODS)
    kill_after = random.Random(seed).randint(2, total - 8)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "tiny.keras"), str(tmp_path / "images.npy"),
         str(report), ",".join(METHODS)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while _file_records(report) < kill_after and child.poll() is None:
        assert time.monotonic() < deadline, "the export never got going"
        time.sleep(0.002)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]

    # After the kill: every recorded figure, thumbnail and input image is a complete PNG.
    killed = Manifest.load(report)
    assert kill_after <= len(killed.entries) < total
    for entry in killed.entries.values():
        for rel in (entry.path, entry.thumbnail):
            assert cv2.imread(str(report / rel)) is not None, rel
    for info in killed.images["tiny"].values():
        assert cv2.imread(str(report / info["path"])) is not None
    recorded = {(e.method, e.image_id) for e in killed.entries.values()}

    # Rerun: only what was not recorded is computed.
    export_module = importlib.import_module("vizkit.report.export")
    computed = []
    real_run = export_module.Writer.run

    def counting(self, group, jobs):
        computed.extend((group.method, job.image_id) for job in jobs)
        return real_run(self, group, jobs)

    monkeypatch.setattr(export_module.Writer, "run", counting)
    export(model, images, report, methods=METHODS, progress=False, diagnose=False)
    assert not recorded & set(computed)
    assert len(computed) == total - len(recorded)
    final = load(report)
    assert len(final["files"]) == total and final["pending"] == []
    for f in final["files"]:
        assert cv2.imread(str(report / f["path"])) is not None
    assert not list(report.rglob("*.tmp*")) and not (report / JOURNAL_NAME).exists()


SCRIPT = """
import sys
import numpy as np
import models, vizkit

print("script ran")  # a worker process must not run this again
model = models.load_model(sys.argv[1])
vizkit.export(model, np.load(sys.argv[2])[:2], sys.argv[3], methods=["saliency"],
              formats=["png", "pdf"], progress=False, diagnose=False)
"""


@pytest.mark.slow
def test_matplotlib_workers_do_not_rerun_a_script_without_main_guard(tmp_path):
    """PDF figures are drawn in worker processes; a user's script without an
    ``if __name__ == "__main__"`` guard runs once and finishes."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, activation="relu", name="c1")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    keras.Model(inp, out, name="tiny").save(tmp_path / "tiny.keras")
    np.save(tmp_path / "images.npy", np.random.default_rng(0).random((2, 8, 8, 1), np.float32))
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tiny.keras"), str(tmp_path / "images.npy"),
         str(tmp_path / "report")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("script ran") == 1
    files = load(tmp_path / "report")["files"]
    assert sorted(f["format"] for f in files) == ["pdf", "pdf", "png", "png"]
    pdf = next(f for f in files if f["format"] == "pdf")
    assert (tmp_path / "report" / pdf["path"]).read_bytes().startswith(b"%PDF")
