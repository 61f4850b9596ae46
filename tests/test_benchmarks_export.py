"""The export benchmarks' helpers (nothing heavy runs, no timing is asserted)."""

import json
import os

import pytest

from benchmarks import export_scale, export_speed


def test_entry_points_and_targets():
    assert callable(export_speed.main) and callable(export_scale.main)
    assert export_speed.TARGET_RATIO == 1.25 and export_speed.TARGET_SPEEDUP == 20.0
    assert export_scale.MEMORY_LIMIT_GIB == 2.0 and export_scale.SLOWDOWN_LIMIT == 1.5


def test_per_file_times_reads_the_figures_modification_times(tmp_path):
    # 20 figures written 1 s apart, then 20 written 3 s apart: 1 s and 3 s per figure.
    files, stamp = [], 1_000_000_000
    for i in range(40):
        path = tmp_path / f"f{i:02d}.png"
        path.write_bytes(b"x")
        stamp += 1 if i < 20 else 3
        os.utime(path, ns=(stamp * 10**9, stamp * 10**9))
        files.append({"path": path.name})
    (tmp_path / "manifest.json").write_text(json.dumps({"files": files}))
    first, last, count = export_scale.per_file_times(tmp_path, window=10)
    assert count == 40
    assert first == pytest.approx(1.0) and last == pytest.approx(3.0)
