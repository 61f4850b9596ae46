"""The benchmark scripts import and their helpers work; nothing heavy runs, no timing is asserted."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import memory, peers, rbm_vs_sklearn, timing


def test_modules_expose_their_entry_points():
    for module in (bench_main, memory, peers, rbm_vs_sklearn):
        assert callable(module.main)
    assert peers.OVERHEAD_TARGET == 1.3
    assert set(peers.GRADIENT_TASKS) <= set(peers.TARGETS)


def test_median_times_counts_calls_and_alternates():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    medians, rounds = timing.median_times(fns, repeats=3, warmup=1)
    assert rounds == 3
    assert calls == ["a", "b"] * 4  # one warm-up round, then three alternating timed rounds
    assert set(medians) == {"a", "b"} and all(t >= 0 for t in medians.values())


def test_median_times_budget_bounds_rounds():
    _, rounds = timing.median_times({"a": lambda: None}, repeats=3, budget=1e-12)
    assert rounds == 1
    _, rounds = timing.median_times({"a": lambda: None}, repeats=3, budget=10.0, max_repeats=7)
    assert rounds == 7


def test_limit_on_a_tiny_model():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3)(x))
    lim = peers.Limit(model, chunks=(2, 4), sample=4, repeats=1)
    for backward in (False, True):
        per = lim.per_image(backward=backward)
        assert per > 0
        assert lim.seconds(10, backward=backward) == pytest.approx(10 * per)
        assert lim.best_chunk(backward=backward) in (2, 4)
    # The backward pass is the gradient of the mean of the first output channel.
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    cut = peers.Limit(model, layer="conv", chunks=(2,), sample=2, repeats=1)
    assert cut.fwd(x).shape == (2, 8, 8, 2)
    assert cut.fwd_bwd(x).shape == (2, 8, 8, 1)


def test_windows_match_occlusion_grid():
    assert peers._windows(64, 8, 8) == 64
    assert peers._windows(224, 16, 8) == 27 * 27


def test_missed_targets_explain_the_floor():
    rows = [
        {
            "task": "occl",
            "peer": "p",
            "target": "<= 0.25",
            "met": "NO",
            "vizkit/peer": 0.6,
            "limit/peer (floor)": 0.5,
            "vizkit/limit": 1.2,
        },
        {
            "task": "sg",
            "peer": "p",
            "target": "<= 0.3",
            "met": "yes",
            "vizkit/peer": 0.2,
            "limit/peer (floor)": 0.1,
            "vizkit/limit": 2.0,
            "overhead met (<= 1.3)": "NO",
        },
    ]
    text = peers.missed(rows)
    assert "occl vs p: ratio 0.60 > 0.25" in text and "compute bound" in text
    assert "sg: overhead 2.00x the limit > 1.3" in text
    assert peers.missed(rows[:0]).endswith("None.")


def test_write_results_into_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "RESULTS", tmp_path)
    rows = [{"task": "a", "vizkit s": 0.5, "peer s": 2.0}, {"task": "b", "met": "yes"}]
    path = timing.write_results("demo", rows, command="cmd --x", title="Demo", notes="note")
    text = path.read_text()
    assert path == tmp_path / "demo.md"
    assert "Command: `cmd --x`" in text and "| a | 0.5 | 2 |  |" in text and "note" in text
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["rows"] == rows and record["meta"]["command"] == "cmd --x"
    other = timing.write_results("demo", rows, command="c", title="T", out=tmp_path / "q")
    assert other == tmp_path / "q" / "demo.md" and other.exists()


def test_zoo_accuracy_plans_and_table_helpers():
    import models
    from benchmarks import zoo_accuracy as zoo

    # Every planned name is registered; the ResNet-18 plan carries the target.
    assert set(zoo.PLANS) <= set(models.list_models())
    assert zoo.PLANS["resnet18"].target == 0.925
    sgd = zoo.PLANS["resnet18"].make_optimizer()
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    row = {"model": "vgg16", "dataset": "fashion_mnist", "width": 0.25, "epochs": 5, "quick": False}
    assert zoo._published(row) == "0.9350"
    assert zoo._published({**row, "dataset": "mnist"}) == "-"
    # Rows from before the recipe column count as Adam at a constant rate.
    assert zoo._key(row) == zoo._key({**row, "recipe": zoo.OLD_RECIPE})
    assert zoo._key(row) != zoo._key({**row, "recipe": zoo._recipe(zoo.PLANS["resnet18"])})
    # A plan run on another dataset drops the target, which was set for the plan's own data.
    assert zoo._plan_for("resnet18", {"dataset": "mnist", "epochs": 1}).target is None
    assert zoo._plan_for("resnet18", {"dataset": "fashion_mnist"}).target == 0.925


def test_dbn_benchmark_writes_its_table(tmp_path):
    from benchmarks import dbn_mnist

    row = {
        "dataset": "mnist", "source": "test", "train": 10, "test": 5, "pretrain_seconds": 1.0,
        "reconstruction_error": [0.02, 0.01], "label_units_accuracy": 0.9,
        "fine_tuned_accuracy": 0.97, "finetune_seconds": 2.0, "baseline_accuracy": 0.95,
    }  # fmt: skip
    dbn_mnist.write(row, dbn_mnist.QUICK, tmp_path, "cmd")
    text = (tmp_path / "dbn.md").read_text()
    assert "| 0.9000 |" in text and "| 0.9700 |" in text and "| 0.9500 |" in text
    assert json.loads((tmp_path / "dbn.json").read_text())["result"] == row


def test_results_sections_are_replaced_and_other_sections_kept(tmp_path):
    # benchmarks.scale (Ray) and benchmarks.distribute (training) share results/scale.md.
    from benchmarks import distribute, scale

    path = tmp_path / "scale.md"
    path.write_text(f"# Scale\n\n{distribute.SECTION}\n\nkept\n")
    timing.write_section(path, scale.SECTION, f"{scale.SECTION}\n\nfirst\n")
    timing.write_section(path, scale.SECTION, f"{scale.SECTION}\n\nsecond\n")
    text = path.read_text()
    assert f"{distribute.SECTION}\n\nkept" in text
    assert text.count(scale.SECTION) == 1 and "second" in text and "first" not in text
    path.write_text(f"# T\n\n{scale.SECTION}\n\nold\n\n## Later\n\nkept\n")
    timing.write_section(path, scale.SECTION, f"{scale.SECTION}\n\nnew\n")
    assert path.read_text() == f"# T\n\n{scale.SECTION}\n\nnew\n\n## Later\n\nkept\n"


def test_scale_plan_names_the_slowest_stage():
    from benchmarks import scale

    costs = {"decode": 0.004, "map_mb": 0.19, "write_mb_s": 100.0}
    fast_gpu, slow_gpu = (
        scale.imagenet_plan(costs, gpu_images_s=ips, cores=2, workers=(1, 64))
        for ips in (5000.0, 100.0)
    )
    assert fast_gpu[0]["top-k bound by"] == "JPEG decoding"  # 2 ms of decoding > 0.2 ms of GPU
    assert slow_gpu[0]["top-k bound by"] == "model passes"
    assert slow_gpu[1]["saliency bound by"] == "writing"  # 64 GPUs outrun one disk
    # Hours are images x seconds per image: one GPU at 100 images/s takes 1.28M / 100 s.
    assert slow_gpu[0]["top-k, 3 layers: hours"] == pytest.approx(scale.IMAGENET / 100 / 3600)


def test_trust_benchmark_tables():
    from benchmarks import trust
    from vizkit.metrics import RandomizationResult

    assert callable(trust.main) and trust.METHODS_COMPARED == ("vanilla", "guided")
    spearman = np.array([[0.9, 0.7], [0.1, 0.3]], np.float32)
    result = RandomizationResult("vanilla", ("out", "conv"), True, {"spearman": spearman})
    rows = trust.layer_rows({"vanilla": result})
    assert rows == [
        {"randomised": "top .. out", "vanilla": "0.800 ± 0.100"},
        {"randomised": "top .. conv", "vanilla": "0.200 ± 0.100"},
    ]
    single = RandomizationResult("vanilla", ("out", "conv"), False, {"spearman": spearman})
    assert trust.layer_rows({"vanilla": single})[1]["randomised"] == "conv"
    assert trust._table(rows).splitlines()[:2] == ["| randomised | vanilla |", "|---|---|"]
