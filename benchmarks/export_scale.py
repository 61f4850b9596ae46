"""Export at scale: 10,000 MNIST digits x 3 methods from a stream, memory and time per file.

``python -m benchmarks.export_scale`` exports the MNIST test set (10,000 digits, streamed from a
generator of ``(x, y)`` batches of 100, so the export never sees the dataset as one array) with
saliency, Grad-CAM (``c3_conv``) and occlusion for LeNet-5 (the model of
:mod:`benchmarks.export_speed`), in a fresh child process, and writes ``results/export_scale.md``:

* peak resident memory of the child (``ru_maxrss``; target: under 2 GiB), TensorFlow included;
* time per file over the first 500 figures and over the last 500 (from the files' modification
  times; target: the end within 1.5x of the start: no work that grows with the number of files
  written, such as rewriting the manifest or the index after each file).

``--count N`` exports fewer digits (``--quick``: 1000, written to ``results/quick/``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .export_speed import lenet_case
from .timing import RESULTS, load_average, write_results

MEMORY_LIMIT_GIB = 2.0
SLOWDOWN_LIMIT = 1.5
WINDOW = 500

_CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, models, vizkit

model = models.load_model(sys.argv[1])
count, out = int(sys.argv[2]), sys.argv[3]
data = models.load_dataset("mnist")
x, y = data.x_test[:count], data.y_test[:count]
del data

def batches():  # a stream: copies of 100 digits at a time
    for lo in range(0, count, 100):
        yield x[lo : lo + 100].copy(), y[lo : lo + 100].copy()

# What the process holds before the export: TensorFlow, the model, the digits, one compiled
# pass of each method (so that the export's own memory is the difference).
vizkit.saliency(model, x[:2]); vizkit.gradcam(model, x[:2], layer="c3_conv")
vizkit.occlusion(model, x[:2], patch=4, stride=2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
start = time.perf_counter()
vizkit.export(model, batches(), out, methods=["saliency", "gradcam", "occlusion"],
              layers=["c3_conv"], progress=False, diagnose=False,
              labels=[str(i) for i in range(10)])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": seconds, "peak_rss_gib": peak, "before_gib": before}))
"""


def per_file_times(folder: Path, window: int) -> tuple[float, float, int]:
    """Seconds per figure file over the first and the last ``window`` figures (by mtime)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    times = sorted((folder / f["path"]).stat().st_mtime_ns for f in manifest["files"])
    window = min(window, len(times) // 2)
    first = (times[window - 1] - times[0]) / 1e9 / (window - 1)
    last = (times[-1] - times[-window]) / 1e9 / (window - 1)
    return first, last, len(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.export_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=10_000, help="MNIST test digits")
    parser.add_argument("--quick", action="store_true", help="1000 digits, results/quick/")
    args = parser.parse_args(argv)
    count = 1000 if args.quick else args.count
    path = lenet_case(1)["path"]
    with tempfile.TemporaryDirectory(prefix="vizkit-export-scale-") as tmp:
        out = Path(tmp) / "report"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        root = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(count), str(out)],
            env=env, cwd=tmp, capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(done.stdout.strip().splitlines()[-1])
        first, last, files = per_file_times(out, WINDOW)
        on_disk = sum(1 for p in out.rglob("*") if p.is_file())
        manifest_mib = (out / "manifest.json").stat().st_size / 2**20
    row = {
        "images": count,
        "figures": files,
        "files on disk": on_disk,
        "seconds": result["seconds"],
        "figures / s": files / result["seconds"],
        "peak RSS GiB": result["peak_rss_gib"],
        "RSS before export GiB": result["before_gib"],
        "memory target GiB": f"< {MEMORY_LIMIT_GIB}",
        f"s / figure, first {WINDOW}": first,
        f"s / figure, last {WINDOW}": last,
        "last / first": last / first,
        "slow-down target": f"<= {SLOWDOWN_LIMIT}",
        "manifest.json MiB": manifest_mib,
    }
    print(row, flush=True)
    command = "python -m benchmarks.export_scale" + (" --quick" if args.quick else "")
    if not args.quick and count != 10_000:
        command += f" --count {count}"
    notes = (
        "A child process exports the MNIST test digits streamed from a generator of (x, y) "
        "batches of 100 (labels in the captions) with saliency, Grad-CAM (c3_conv) and "
        "occlusion for LeNet-5; peak RSS is the child's ru_maxrss (TensorFlow, the MNIST arrays and "
        "the model included; 'before export' is the peak after computing each method once). Time "
        "per figure comes from the figure files' modification times, sorted: the first and the "
        f"last {WINDOW}. Files on disk: figures, thumbnails (hard links), input images, HTML "
        f"pages, the manifest. Load average when written: {load_average()}."
    )
    out_dir = RESULTS / "quick" if args.quick else None
    written = write_results("export_scale", [row], command=command, title="Export at scale",
                            notes=notes, out=out_dir)  # fmt: skip
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
