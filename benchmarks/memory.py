"""Peak resident memory of DeepDream on a 2048x2048 image (target: under 4 GiB).

Run ``python -m benchmarks.memory``. The measurement runs in a fresh subprocess so that the
peak (``ru_maxrss``) belongs to this job alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

LIMIT_GIB = 4.0

_CHILD = r"""
import os, resource, time, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np, vizkit
keras.utils.set_random_seed(0)
inp = keras.Input((None, None, 3))
x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inp)
x = keras.layers.MaxPooling2D(name="pool1")(x)
x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
model = keras.Model(inp, x)
size = int(os.environ["DREAM_SIZE"])
image = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
start = time.perf_counter()
out = vizkit.deepdream(model, image, ["conv2"], octaves=3, steps=int(os.environ["DREAM_STEPS"]), tile_size=512)
seconds = time.perf_counter() - start
print(json.dumps({"shape": list(out.shape), "seconds": seconds,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measure(size: int, steps: int) -> dict:
    env = {**__import__("os").environ, "DREAM_SIZE": str(size), "DREAM_STEPS": str(steps)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--quick", action="store_true", help="512x512, 2 steps; writes to results/quick/"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps = 512, 2
    result = measure(args.size, args.steps)
    result.update(
        size=args.size, steps=args.steps, limit_gib=LIMIT_GIB, ok=result["peak_rss_gib"] < LIMIT_GIB
    )
    print(result)
    from .timing import RESULTS, write_results

    cmd = f"python -m benchmarks.memory --size {args.size} --steps {args.steps}"
    row = {
        "task": f"deepdream {args.size}x{args.size}x3, 3 octaves, {args.steps} steps, tile 512",
        "peak RSS GiB": result["peak_rss_gib"],
        "limit GiB": LIMIT_GIB,
        "seconds": result["seconds"],
        "within limit": result["ok"],
    }
    write_results(
        "memory",
        [row],
        command=cmd,
        title="Peak memory of DeepDream on a large image",
        notes="Peak RSS (`ru_maxrss`) of a fresh Python process that imports TensorFlow, builds "
        "a 2-conv fully-convolutional model and runs `vizkit.deepdream` once; it includes the "
        "TensorFlow runtime itself.",
        out=RESULTS / "quick" if args.quick else None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
