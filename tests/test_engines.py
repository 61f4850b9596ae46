"""Dataset jobs on the local engine and on Ray: the same answers, retries, clear errors.

The Ray tests share one local Ray with two CPUs (the ``ray_local`` fixture in conftest.py).
Ray worker processes import TensorFlow once and keep loaded models, but the cases stay few
and small.
"""

import json
import os
import pickle
import socket
import sys

import keras
import numpy as np
import pytest
from helpers import random_images, small_cnn

import vizkit
from vizkit.engines import ChannelStats, LocalEngine, RayEngine, TopK, resolve_engine
from vizkit.engines.ray_engine import collect, worker_error


def tie_model():
    """``small_cnn`` whose conv1 channel 3 never fires: every image ties at score 0 there."""
    model = small_cnn()
    kernel, bias = model.get_layer("conv1").get_weights()
    bias[3] = -100.0
    model.get_layer("conv1").set_weights([kernel, bias])
    return model


def tie_data(n, seed=0):
    """``n`` images where image ``i + ceil(n / 2)`` repeats image ``i``: equal scores."""
    half = random_images(-(-n // 2), seed=seed)
    return np.concatenate([half, half])[:n]


def assert_top_k(indices, scores, model, layer, x):
    """``indices`` pick the best images of each channel by a plain Keras sub-model and NumPy.

    Kernels may round the score of one image differently in batches of different sizes
    (float32 ulps), so two copies of an image can swap places; the chosen images must hold the
    top scores up to that rounding, and exact ties (the dead channel's zeros) go to the lower
    index.
    """
    act = np.asarray(keras.Model(model.input, model.get_layer(layer).output)(x))
    every = act.reshape(len(x), -1, act.shape[-1]).max(axis=1).T  # (units, n)
    k = indices.shape[1]
    best = -np.sort(-every, axis=1)[:, :k]
    np.testing.assert_allclose(np.take_along_axis(every, indices, axis=1), best, rtol=1e-5)
    np.testing.assert_allclose(scores, best, rtol=1e-5, atol=1e-6)
    for u in range(len(every)):
        assert len(set(indices[u].tolist())) == k
        if not every[u].any():
            assert indices[u].tolist() == list(range(k))


# -- reductions (NumPy only) ----------------------------------------------------------------------
def test_top_k_merged_from_chunks_in_any_order_equals_one_pass():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(57, 5)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.05] = np.nan
    whole = TopK.of_batch(scores, 0, 6)
    for trial in range(20):
        cuts = np.sort(rng.choice(np.arange(1, 57), size=trial % 6 + 1, replace=False))
        parts = [
            TopK.of_batch(scores[lo:hi], lo, 6)
            for lo, hi in zip([0, *cuts], [*cuts, 57], strict=True)
        ]
        merged = TopK.empty(5, 6)
        for j in rng.permutation(len(parts)):
            merged = merged.merge(parts[j])
        np.testing.assert_array_equal(merged.indices, whole.indices)
        np.testing.assert_array_equal(merged.scores, whole.scores)
    # Ties go to the lower index; NaN ranks last.
    for u in range(5):
        s, i = whole.scores[u], whole.indices[u]
        finite = ~np.isnan(s)
        assert np.all(np.diff(s[finite]) <= 0)
        assert not np.any(finite[1:] & ~finite[:-1])
        for a in range(len(s) - 1):
            if s[a] == s[a + 1]:
                assert i[a] < i[a + 1]


def test_top_k_payload_travels_with_its_image():
    scores = np.array([[1.0], [5.0], [3.0], [4.0]], np.float32)
    left = TopK.of_batch(scores[:2], 0, 2, lambda row, unit: ("img", row))
    right = TopK.of_batch(scores[2:], 2, 2, lambda row, unit: ("img", 2 + row))
    merged = left.merge(right)
    assert merged.indices.tolist() == [[1, 3]]
    assert [p[1] for p in merged.extras[0]] == [1, 3]


def test_channel_stats_merge_min_max_counts_and_sums():
    rng = np.random.default_rng(2)
    batches = [
        {"min": rng.normal(size=3), "max": rng.normal(size=3) + 3, "absmax": rng.random(3),
         "zeros": rng.integers(0, 9, 3).astype(float), "count": np.float64(10)}
        for _ in range(4)
    ]  # fmt: skip
    merged = ChannelStats.of_batch(batches[0])
    for b in batches[1:]:
        merged = merged.merge(ChannelStats.of_batch(b))
    v = merged.values
    np.testing.assert_array_equal(v["min"], np.min([b["min"] for b in batches], axis=0))
    np.testing.assert_array_equal(v["max"], np.max([b["max"] for b in batches], axis=0))
    np.testing.assert_array_equal(v["zeros"], np.sum([b["zeros"] for b in batches], axis=0))
    assert v["count"] == 40


class _Concat:
    def merge(self, acc, part):
        return [*(acc or []), part]


def _rows(chunks):
    return [{"chunk": c, "n": 2, "partial": pickle.dumps(f"part{c}")} for c in chunks]


def test_collect_folds_in_chunk_order_and_counts_a_repeated_chunk_once():
    result, n = collect(_rows([2, 0, 1, 0, 3, 2]), _Concat(), 4)
    assert result == ["part0", "part1", "part2", "part3"]
    assert n == 8
    with pytest.raises(RuntimeError, match="returned 3 of 4 chunks"):
        collect(_rows([0, 1, 3]), _Concat(), 4)


def test_worker_errors_become_one_line_of_their_own_type():
    error = worker_error(
        RuntimeError("Traceback ...\n  [vizkit:ValueError] data have height 9\nmore")
    )
    assert type(error) is ValueError and str(error) == "data have height 9"
    error = worker_error(RuntimeError("[vizkit:model] cannot load model 'm' on a Ray worker"))
    assert type(error) is RuntimeError and "cannot load model" in str(error)
    assert str(worker_error(KeyError("x\ny"))).count("\n") == 0


# -- the local engine -----------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["conv1", "conv2", "dense"])
def test_local_top_k_of_every_unit_matches_numpy(layer):
    model, x = tie_model(), tie_data(20)
    indices, scores = vizkit.top_activating(model, layer, None, x, k=4, batch_size=6)
    assert indices.shape == scores.shape == (model.get_layer(layer).output.shape[-1], 4)
    assert_top_k(indices, scores, model, layer, x)
    if layer == "conv1":  # the dead channel: all tied at 0, the lowest indices win
        assert indices[3].tolist() == [0, 1, 2, 3] and not scores[3].any()


def test_one_unit_and_a_list_of_units_are_rows_of_the_every_unit_answer():
    model, x = tie_model(), tie_data(15)
    every = vizkit.top_activating(model, "conv2", None, x, k=3)
    one = vizkit.top_activating(model, "conv2", 4, x, k=3)
    some = vizkit.top_activating(model, "conv2", [5, 0], x, k=3)
    assert one[0].shape == (3,) and some[0].shape == (2, 3)
    np.testing.assert_array_equal(one[0], every[0][4])
    np.testing.assert_array_equal(some[0], every[0][[5, 0]])
    np.testing.assert_array_equal(some[1], every[1][[5, 0]])


def test_a_list_of_layers_is_ranked_in_one_pass_as_by_single_calls():
    model, x = tie_model(), random_images(15, seed=3)
    both = vizkit.top_activating(model, ["conv1", "dense", "conv1"], [2, 0], x, k=3)
    assert list(both) == ["conv1", "dense"]
    for layer, (indices, scores) in both.items():
        alone = vizkit.top_activating(model, layer, [2, 0], x, k=3)
        np.testing.assert_array_equal(indices, alone[0])
        np.testing.assert_allclose(scores, alone[1], rtol=1e-6)


def test_engine_arguments_are_checked():
    with pytest.raises(ValueError, match=r"engine must be one of \('local', 'ray'\), got 'spark'"):
        resolve_engine("spark")
    with pytest.raises(ValueError, match="only apply to engine='ray'"):
        resolve_engine("local", workers=2)
    with pytest.raises(ValueError, match="workers must be a positive int, got 0"):
        RayEngine(workers=0)
    with pytest.raises(TypeError, match="engine must be"):
        resolve_engine(42)
    assert isinstance(resolve_engine("local"), LocalEngine)


def test_a_folder_without_images_is_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="holds no image files"):
        vizkit.diagnose(small_cnn(), tmp_path)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ImportError, match=r'pip install "vizkit\[ray\]"'):
        vizkit.top_activating(small_cnn(), "conv1", 0, random_images(3), engine="ray")


def test_an_unreachable_address_fails_at_once_in_one_line():
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match="cannot reach the Ray cluster") as caught:
        vizkit.diagnose(small_cnn(), random_images(3), engine="ray", address=address)
    assert address in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="address must be"):
        vizkit.diagnose(small_cnn(), random_images(3), engine="ray", address="nowhere")


def test_maps_to_disk_round_trip_with_ids(tmp_path):
    model, x = small_cnn(), random_images(9)
    index = vizkit.map_to_disk(model, x, tmp_path / "npy", method="saliency", batch_size=4)
    maps, ids = vizkit.load_maps(tmp_path / "npy")
    np.testing.assert_allclose(maps, vizkit.explain(model, x, "vanilla"), rtol=1e-5, atol=1e-7)
    assert ids == [f"{i:03d}" for i in range(9)]
    meta = json.loads(index.read_text())
    assert meta["count"] == 9 and len(meta["shards"]) == 3 and meta["shape"] == [12, 12]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        vizkit.map_to_disk(model, x, tmp_path / "npy")
    pytest.importorskip("pyarrow")
    vizkit.map_to_disk(model, x, tmp_path / "pq", method="gradcam", target=1, format="parquet")
    maps, ids = vizkit.load_maps(tmp_path / "pq")
    np.testing.assert_allclose(maps, vizkit.explain(model, x, "gradcam", 1), rtol=1e-5, atol=1e-6)
    assert len(ids) == 9


# -- the Ray engine -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    "n, batch_size, workers", [(1, 4, 1), (7, 2, 2), (64, 8, 2)], ids=["1x1", "7x4", "64x8"]
)
def test_ray_returns_exactly_what_local_returns(ray_local, n, batch_size, workers):
    model, x = tie_model(), tie_data(n, seed=n)
    crops = n == 7
    local = vizkit.top_activating(model, "conv1", None, x, k=5, batch_size=batch_size, crops=crops)
    remote = vizkit.top_activating(
        model, "conv1", None, x, k=5, batch_size=batch_size, crops=crops, engine="ray",
        workers=workers,
    )  # fmt: skip
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])
    assert_top_k(local[0], local[1], model, "conv1", x)
    if crops:
        for a, b in zip(local[2], remote[2], strict=True):
            np.testing.assert_array_equal(a.images, b.images)
            np.testing.assert_array_equal(a.boxes, b.boxes)
    # The diagnosis' sums are folded in chunk order on both engines: equal, not just close.
    assert vizkit.diagnose(
        model, x, batch_size=batch_size, engine="ray", workers=workers
    ) == vizkit.diagnose(model, x, batch_size=batch_size)


@pytest.mark.slow
def test_ray_dataset_input(ray_local):
    import ray

    model, x = tie_model(), tie_data(23)
    dataset = ray.data.from_numpy(x).repartition(4)
    local = vizkit.diagnose(model, dataset, batch_size=5)
    remote = vizkit.diagnose(model, dataset, batch_size=5, engine="ray", workers=2)
    assert remote == local == vizkit.diagnose(model, x, batch_size=5)


@pytest.mark.slow
def test_tf_data_and_folder_inputs(ray_local, tmp_path):
    import cv2
    import tensorflow as tf

    model, x = tie_model(), tie_data(10)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(3)  # re-cut into chunks of 4
    local = vizkit.top_activating(model, "conv2", None, stream, k=3, batch_size=4)
    remote = vizkit.top_activating(model, "conv2", None, stream, k=3, batch_size=4, engine="ray")
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])

    pixels = (x * 255).round().astype(np.uint8)
    for i, image in enumerate(pixels):
        cv2.imwrite(str(tmp_path / f"digit{i:02d}.png"), image)
    local = vizkit.top_activating(model, "conv2", None, tmp_path, k=3, batch_size=4)
    remote = vizkit.top_activating(
        model, "conv2", None, tmp_path, k=3, batch_size=4, engine="ray", workers=1
    )
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])
    np.testing.assert_array_equal(
        local[0], vizkit.top_activating(model, "conv2", None, pixels, k=3)[0]
    )


@pytest.mark.slow
def test_a_worker_that_dies_mid_job_is_retried_and_nothing_is_counted_twice(ray_local, tmp_path):
    import tensorflow as tf

    model, x = tie_model(), tie_data(48)
    x[x == 0.5] = 0.25
    x[30, 0, 0, 0] = 0.5  # the sentinel sits in chunk 3 of 6
    marker = str(tmp_path / "died")

    def die_once(batch):
        def check(values):
            hit = np.any(values.numpy()[:, 0, 0, 0] == 0.5)
            if hit and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # the worker process dies, as on a lost node
            return values

        out = tf.py_function(check, [batch], tf.float32)
        out.set_shape(batch.shape)
        return out

    remote = vizkit.diagnose(model, x, batch_size=8, preprocess=die_once, engine="ray", workers=2)
    assert os.path.exists(marker), "the worker did not die: the test proves nothing"
    local = vizkit.diagnose(model, x, batch_size=8)
    assert remote.n_images == 48 and remote["conv1"].dead == (3,)
    assert remote == local  # every statistic, the float sums too


@pytest.mark.slow
def test_bad_input_on_the_ray_engine_is_one_clear_line(ray_local, tmp_path):
    # A model that cannot be loaded on a worker, a folder with no images, a wrong address.
    engine = RayEngine(workers=1, model_source=str(tmp_path / "gone.keras"))
    with pytest.raises(RuntimeError, match="cannot load model 'gone' on a Ray worker") as caught:
        vizkit.top_activating(small_cnn(), "conv1", 0, random_images(4), engine=engine)
    assert "\n" not in str(caught.value) and "no model file" in str(caught.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        vizkit.diagnose(small_cnn(), tmp_path / "empty", engine="ray", workers=1)
    with socket.socket() as probe:  # with Ray running, a wrong address is still not ignored
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError, match="cannot reach"):
        vizkit.diagnose(small_cnn(), random_images(3), engine="ray", address=f"127.0.0.1:{port}")


@pytest.mark.slow
def test_maps_written_by_ray_workers_equal_the_local_ones(ray_local, tmp_path):
    model, x = small_cnn(), random_images(10)
    vizkit.map_to_disk(model, x, tmp_path / "local", method="gradcam", batch_size=4)
    vizkit.map_to_disk(
        model, x, tmp_path / "ray", method="gradcam", batch_size=4, engine="ray", workers=2
    )
    local, local_ids = vizkit.load_maps(tmp_path / "local")
    remote, remote_ids = vizkit.load_maps(tmp_path / "ray")
    assert remote_ids == local_ids
    # The same compiled call on the same chunk; a float32-ulp margin for thread scheduling.
    np.testing.assert_allclose(remote, local, rtol=1e-6, atol=1e-7)
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*.npy")) == [
        "part-00000.npy",
        "part-00001.npy",
        "part-00002.npy",
    ]
