"""Timing helpers shared by the benchmark scripts: warm-up, repeats, medians, result files."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict:
    """What the numbers were measured on."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": __import__("os").cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def write_results(
    stem: str, rows: list[dict], *, command: str, title: str, notes: str = ""
) -> Path:
    """Write ``results/<stem>.json`` and a Markdown table ``results/<stem>.md``; return the .md path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        f"Measured {meta['date']} on {meta['machine']['platform']}, "
        f"{meta['machine']['cpus']} CPUs, GPUs: {meta['machine']['gpus'] or 'none'}, "
        f"TensorFlow {meta['machine']['tensorflow']}, Keras {meta['machine']['keras']}.",
        "",
    ]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    path = RESULTS / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
