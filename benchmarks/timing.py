"""Timing helpers shared by the benchmark scripts: warm-up, repeats, medians, result files."""

from __future__ import annotations

import json
import os
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


def median_times(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 3,
    warmup: int = 1,
    budget: float | None = None,
    max_repeats: int = 15,
) -> tuple[dict[str, float], int]:
    """Median wall time of each of ``fns`` after warm-up, timed in alternating rounds.

    Alternating the contenders round by round spreads any drift in the machine's load over all
    of them instead of penalising whichever ran during a busy spell. With ``budget`` (seconds),
    the number of rounds is set so that the timed rounds take about that long, judged from the
    last warm-up round: more rounds (up to ``max_repeats``) for quick tasks, whose medians are
    the noisiest, fewer (down to one) for slow ones. Returns ``(medians, rounds)``.
    """
    warm = dict.fromkeys(fns, 0.0)
    for _ in range(warmup):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            warm[name] = time.perf_counter() - start
    rounds = repeats
    if budget is not None and warmup:
        fits = int(budget / max(sum(warm.values()), 1e-9))
        rounds = max(1, min(max(repeats, max_repeats), fits))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, rounds


def load_average() -> str:
    """The 1/5/15-minute load averages, for the record (the machine is shared)."""
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def machine() -> dict:
    """What the numbers were measured on."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def write_results(
    stem: str,
    rows: list[dict],
    *,
    command: str,
    title: str,
    notes: str = "",
    extra: dict | None = None,
    out: Path | None = None,
) -> Path:
    """Write ``<out>/<stem>.json`` and a Markdown table ``<out>/<stem>.md``; return the .md path.

    ``out`` defaults to :data:`RESULTS`; ``extra`` adds keys to the JSON file.
    """
    folder = RESULTS if out is None else Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load average at write (1/5/15 min)": load_average(),
    }
    record = {"meta": meta, "rows": rows, **(extra or {}), "notes": notes}
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        f"Measured {meta['date']} on {meta['machine']['platform']}, "
        f"{meta['machine']['cpus']} CPUs, GPUs: {meta['machine']['gpus'] or 'none'}, "
        f"TensorFlow {meta['machine']['tensorflow']}, Keras {meta['machine']['keras']}; "
        f"load average when written (1/5/15 min): {meta['load average at write (1/5/15 min)']}.",
        "",
    ]
    lines += markdown_table(rows)
    if notes:
        lines += ["", notes]
    path = folder / f"{stem}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_section(
    path: Path, heading: str, text: str, *, title: str = "# Beyond one machine"
) -> None:
    """Replace the ``heading`` section (``## ...`` up to the next ``## ``) of ``path`` with
    ``text``, or append it; the file's other sections are kept (several benchmarks share it)."""
    old = path.read_text() if path.exists() else title + "\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n")
    else:
        end = old.find("\n## ", start + len(heading))
        rest = "\n\n" + old[end + 1 :] if end >= 0 else ""
        new = old[:start] + text.rstrip("\n") + rest
    path.write_text(new.rstrip("\n") + "\n")


def ray_section_head(heading: str, command: str, info: dict) -> list[str]:
    """The first lines of a Ray results section of ``scale.md``: the heading, the command, and
    when and on what (``info`` from :func:`machine`) it was measured."""
    import ray

    return [
        heading,
        "",
        f"Command: `{command}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpus']} CPUs "
        f"(GPUs: {info['gpus'] or 'none'}), TensorFlow {info['tensorflow']}, Ray {ray.__version__}; "
        f"load average when written (1/5/15 min): {load_average()} (a shared machine).",
        "",
    ]


def markdown_table(rows: list[dict]) -> list[str]:
    """Lines of a Markdown table with a column per key (in first-seen order)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return lines


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
