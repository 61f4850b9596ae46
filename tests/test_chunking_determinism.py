"""Memory and determinism: a batch larger than one chunk gives the chunk-by-chunk answer, no
compiled call ever sees more than ``batch_size`` model inputs, and fixed seeds give identical
outputs from run to run (in this process and in a fresh one).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import f32_tol

import vizkit

N = 7  # images: with batch_size=3 that is chunks of 3, 3 and 1


@keras.saving.register_keras_serializable("vizkit_reliability")
class BatchLimit(keras.layers.Layer):
    """Identity that fails the graph when it sees more than ``limit`` inputs at once."""

    def __init__(self, limit: int, **kw):
        super().__init__(**kw)
        self.limit = limit

    def call(self, x):
        tf.debugging.assert_less_equal(
            tf.shape(x)[0], self.limit, message="a chunk exceeded batch_size"
        )
        return x


def build(limit: int | None = None, size: int = 12) -> keras.Model:
    keras.utils.set_random_seed(3)
    inp = keras.Input((size, size, 1))
    h = inp if limit is None else BatchLimit(limit, name="limit")(inp)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(g), name="m")


@pytest.fixture(scope="module")
def model():
    return build()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).random((N, 12, 12, 1), dtype=np.float32)


# method name -> f(model, images, batch_size) -> array or tuple of arrays
CHUNKED = {
    "vanilla": lambda m, x, b: vizkit.saliency(m, x, batch_size=b),
    "smoothgrad": lambda m, x, b: vizkit.saliency(
        m, x, method="smoothgrad", samples=5, seed=1, batch_size=b
    ),
    "integrated": lambda m, x, b: vizkit.saliency(
        m, x, 1, method="integrated", steps=8, warn=False, batch_size=b
    ),
    "guided": lambda m, x, b: vizkit.saliency(m, x, method="guided", batch_size=b),
    "gradcam": lambda m, x, b: vizkit.gradcam(m, x, batch_size=b),
    "gradcam++": lambda m, x, b: vizkit.gradcam(m, x, plus_plus=True, batch_size=b),
    "occlusion": lambda m, x, b: vizkit.occlusion(m, x, patch=4, stride=2, batch_size=b),
    "feature_maps": lambda m, x, b: vizkit.feature_maps(m, x, batch_size=b),
    "hypercolumns": lambda m, x, b: vizkit.hypercolumns(m, x, ["conv1", "conv2"], batch_size=b),
    "top_activating": lambda m, x, b: vizkit.top_activating(m, "conv2", 2, x, k=4, batch_size=b),
    "diagnose": lambda m, x, b: vizkit.diagnose(m, x, batch_size=b).to_dict()["layers"],
    # Random transforms draw per image from a seed keyed by its unit, not by batch position.
    "maximize": lambda m, x, b: vizkit.maximize(m, "conv2", [0, 1, 2, 5], steps=5, batch_size=b),
    "maximize (no transforms)": lambda m, x, b: vizkit.maximize(
        m, "conv2", [0, 1, 2, 5], steps=5, transforms=None, batch_size=b
    ),
}


# build()'s longest chain of sums: conv1 (3x3x1), conv2 (3x3x4), the dense layer (6 inputs).
N_TERMS = 9 + 36 + 6
# Chunks of 64, 3 and 1 inputs are different batch shapes, whose kernels may add up in another
# order: equal to rounding, relative to values of order one (maps in [0, 1], probabilities,
# activations and gradients of a few units at most), and absolutely near zero.
RTOL = ATOL = f32_tol(N_TERMS, 1.0)


def _assert_same(a, b, *, rtol=RTOL, atol=ATOL):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k], rtol=rtol, atol=atol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _assert_same(u, v, rtol=rtol, atol=atol)
    elif isinstance(a, (np.ndarray, float, np.floating)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    else:
        assert a == b


@pytest.mark.parametrize("method", list(CHUNKED))
def test_batch_larger_than_a_chunk_equals_chunk_by_chunk(model, images, method):
    run = CHUNKED[method]
    whole = run(model, images, 64)  # one chunk
    chunked = run(model, images, 3)  # 3 + 3 + 1
    one_by_one = run(model, images, 1)
    _assert_same(chunked, whole)
    _assert_same(one_by_one, whole)


def test_maximize_image_for_a_unit_does_not_depend_on_the_other_units(model):
    both = vizkit.maximize(model, "conv2", [5, 1], steps=5)
    alone = vizkit.maximize(model, "conv2", [1], steps=5)
    np.testing.assert_allclose(both[1], alone[0], rtol=RTOL, atol=ATOL)
    assert not np.allclose(both[0], both[1])


@pytest.mark.parametrize("method", [m for m in CHUNKED if not m.startswith("maximize")])
def test_no_compiled_call_sees_more_than_batch_size_inputs(images, method):
    # The model itself fails if a call gets more than 3 inputs: noisy copies, path points and
    # occluded copies all count.
    run = CHUNKED[method]
    run(build(limit=3), images, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeded batch_size"):
        run(build(limit=3), images, 4)


def test_maximize_optimises_at_most_batch_size_images_at_once():
    CHUNKED["maximize"](build(limit=2), None, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeded batch_size"):
        CHUNKED["maximize"](build(limit=2), None, 3)


def test_many_occluded_copies_per_image_are_split_across_calls():
    # A 32 x 32 image with patch 4 and stride 1 has 841 occluded copies; with batch_size=16 one
    # image is spread over 53 calls, and the answer equals one large call.
    keras.utils.set_random_seed(0)
    big = build(size=32)
    x = np.random.default_rng(0).random((1, 32, 32, 1), dtype=np.float32)
    small_chunks = vizkit.occlusion(big, x, 0, patch=4, stride=1, batch_size=16)
    one_call = vizkit.occlusion(big, x, 0, patch=4, stride=1, batch_size=1024)
    np.testing.assert_allclose(small_chunks, one_call, rtol=RTOL, atol=ATOL)


def test_large_image_deepdream_runs_in_tiles():
    # A fully-convolutional model on an image four times the tile side: computed tile by tile.
    inp = keras.Input((None, None, 1))
    h = BatchLimit(1, name="limit")(inp)
    h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(h)
    m = keras.Model(inp, h)
    img = np.random.default_rng(0).random((256, 256, 1), dtype=np.float32)
    out = vizkit.deepdream(m, img, "conv", octaves=1, steps=2, tile_size=64, seed=0)
    assert out.shape == img.shape and np.all(np.isfinite(out))


# -- determinism -----------------------------------------------------------------------------------
SEEDED = {
    "smoothgrad": lambda m, x: vizkit.saliency(m, x, method="smoothgrad", samples=6, seed=7),
    "integrated": lambda m, x: vizkit.saliency(m, x, 0, method="integrated", steps=8, warn=False),
    "gradcam": lambda m, x: vizkit.gradcam(m, x),
    "occlusion": lambda m, x: vizkit.occlusion(m, x, patch=3, fill="blur"),
    "maximize": lambda m, x: vizkit.maximize(m, "conv2", [0, 3], steps=6, seed=4),
    "deepdream": lambda m, x: vizkit.deepdream(m, x[0], ["conv1", "conv2"], steps=3, seed=2),
    "top_activating": lambda m, x: vizkit.top_activating(m, "conv1", 1, x, k=3),
}


@pytest.mark.parametrize("method", list(SEEDED))
def test_fixed_seed_gives_identical_output(model, images, method):
    first = SEEDED[method](model, images)
    # Disturb the global random state in between: results must not depend on it.
    np.random.seed(123)  # noqa: NPY002  (the legacy global state is what users disturb)
    keras.utils.set_random_seed(99)
    tf.random.uniform((3,))
    second = SEEDED[method](model, images)
    # Exact: the same compiled calls on the same inputs with the same seeds.
    _assert_same(first, second, rtol=0, atol=0)


def test_different_seeds_differ(model, images):
    a = vizkit.saliency(model, images, method="smoothgrad", samples=4, seed=1)
    b = vizkit.saliency(model, images, method="smoothgrad", samples=4, seed=2)
    assert not np.allclose(a, b)
    a = vizkit.maximize(model, "conv2", [0], steps=4, seed=1)
    b = vizkit.maximize(model, "conv2", [0], steps=4, seed=2)
    assert not np.allclose(a, b)


SCRIPT = """
import hashlib, os, sys
os.environ["VIZKIT_MAX_STEPS"] = "40"
sys.path.insert(0, {tests!r})
import numpy as np, vizkit
from test_chunking_determinism import build
m = build()
x = np.random.default_rng(5).random((7, 12, 12, 1), dtype=np.float32)
out = [
    vizkit.saliency(m, x, method="smoothgrad", samples=6, seed=7),
    vizkit.maximize(m, "conv2", [0, 3], steps=6, seed=4),
    vizkit.deepdream(m, x[0], ["conv1", "conv2"], steps=3, seed=2),
]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


@pytest.mark.slow
def test_fixed_seeds_identical_in_a_fresh_process(images):
    here = build()
    out = [
        vizkit.saliency(here, images, method="smoothgrad", samples=6, seed=7),
        vizkit.maximize(here, "conv2", [0, 3], steps=6, seed=4),
        vizkit.deepdream(here, images[0], ["conv1", "conv2"], steps=3, seed=2),
    ]
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(Path(__file__).parents[1])}
    script = textwrap.dedent(SCRIPT.format(tests=str(Path(__file__).parent)))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == digest
