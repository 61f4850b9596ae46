"""Training under tf.distribute: throughput and agreement of one device, mirrored and multi-worker.

Run ``python -m benchmarks.distribute [--quick]``. Each setting trains LeNet-5 on the same
MNIST subset with ``models.train`` in a fresh process (logical devices and multi-worker
collectives are set up before TensorFlow starts), and records the steady-state speed of the
last epoch (after tracing) and the final weights. Settings:

- ``plain``: ``strategy=None``, Keras' own ``fit`` on arrays (what users had before);
- ``one device``: ``OneDeviceStrategy`` with the seeded ``tf.data`` pipeline of the strategies;
- ``mirrored, 2 logical CPUs``: ``strategy="mirrored"`` after splitting the CPU in two;
- ``multiworker, 2 processes``: ``strategy="multiworker"``, two workers on localhost ports.

The result goes into the "Training under tf.distribute" section of
``benchmarks/results/scale.md`` (other sections of that file are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .timing import RESULTS, load_average, machine, write_section

SECTION = "## Training under tf.distribute"
SETTINGS = ("plain", "one device", "mirrored, 2 logical CPUs", "multiworker, 2 processes")


def run_child(spec: dict) -> None:
    """Train once as described by ``spec`` (in this fresh process) and write timing + weights."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if spec["mode"] == "multiworker":
        from models.distribute import resolve_strategy

        resolve_strategy("multiworker")  # before TensorFlow runs any op
    if spec["mode"] == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import keras
    import numpy as np

    import models

    strategy = {
        "plain": None,
        "one": tf.distribute.OneDeviceStrategy("/cpu:0"),
        "mirrored": "mirrored",
        "multiworker": "multiworker",
    }[spec["mode"]]
    marks: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            marks.append(time.perf_counter())

    result = models.train(
        "lenet5",
        spec["data"],
        epochs=spec["epochs"],
        batch_size=spec["batch_size"],
        max_train=spec["max_train"],
        validation_split=0.0,
        seed=0,
        verbose=False,
        strategy=strategy,
        callbacks=[Clock()],
    )
    last_epoch = marks[-1] - marks[-2]
    steps = -(-spec["max_train"] // spec["batch_size"])
    out = Path(spec["out"])
    np.savez(out.with_suffix(".npz"), *[w.numpy() for w in result.model.weights])
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "first_epoch_s": marks[1] - marks[0],
                "last_epoch_s": last_epoch,
                "steps_per_s": steps / last_epoch,
                "images_per_s": spec["max_train"] / last_epoch,
                "loss": result.history["loss"],
                "test_accuracy": result.test_accuracy,
            }
        )
    )


def measure(mode: str, spec: dict, folder: Path, timeout: float) -> dict:
    """Run one setting in fresh process(es); its timing (worker 0's for multiworker)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    specs = []
    if mode == "multiworker":
        ports = _free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        for index in range(2):
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            specs.append(({**env, "TF_CONFIG": json.dumps(config)}, folder / f"{mode}{index}"))
    else:
        specs.append((env, folder / mode))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.distribute", "--child",
             json.dumps({**spec, "mode": mode, "out": str(out)})],
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for child_env, out in specs
    ]  # fmt: skip
    try:
        for process in processes:
            _, err = process.communicate(timeout=timeout)
            if process.returncode:
                raise RuntimeError(f"{mode} run failed: {err.strip().splitlines()[-1:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return json.loads(specs[0][1].with_suffix(".json").read_text())


def max_weight_difference(a: Path, b: Path) -> float:
    import numpy as np

    with np.load(a.with_suffix(".npz")) as x, np.load(b.with_suffix(".npz")) as y:
        return max(float(np.abs(x[k] - y[k]).max()) for k in x.files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.distribute",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a small run; results/quick/")
    parser.add_argument("--max-train", type=int, default=8192, help="training images")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (the last is timed)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return 0
    if args.quick:
        args.max_train, args.epochs, args.batch_size = 512, 2, 64
    spec = {
        "data": "mnist",
        "max_train": args.max_train,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
    }
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for mode, name in zip(("plain", "one", "mirrored", "multiworker"), SETTINGS, strict=True):
            print(f"{name} ...", flush=True)
            rows[mode] = measure(mode, spec, folder, timeout=1800)
            print(f"  {rows[mode]['images_per_s']:.0f} images/s", flush=True)
        differences = {
            mode: max_weight_difference(folder / mode, folder / "one")
            for mode in ("mirrored", "multiworker0")
        }
        differences["multiworker1"] = max_weight_difference(folder / "multiworker1", folder / "one")
    command = "python -m benchmarks.distribute" + (
        " --quick"
        if args.quick
        else f" --max-train {args.max_train} --epochs {args.epochs} --batch-size {args.batch_size}"
    )
    text = _section(rows, differences, spec, command)
    print(text)
    target = (RESULTS / "quick" if args.quick else RESULTS) / "scale.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_section(target, SECTION, text)
    print(f"written: {target}")
    return 0


def _section(rows: dict, differences: dict, spec: dict, command: str) -> str:
    info = machine()
    base = rows["one"]["images_per_s"]
    lines = [
        SECTION,
        "",
        f"Command: `{command}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['platform']}, "
        f"{info['cpus']} CPUs, GPUs: {info['gpus'] or 'none'}, TensorFlow {info['tensorflow']}, "
        f"Keras {info['keras']}; load average when written (1/5/15 min): {load_average()} "
        "(the machine is shared with other jobs).",
        "",
        f"LeNet-5 on {spec['max_train']} MNIST images, global batch {spec['batch_size']}, Adam, "
        f"{spec['epochs']} epochs, `models.train`; the speed is that of the last epoch (after "
        "tracing), each setting in fresh process(es).",
        "",
        "| setting | images/s | steps/s | vs one device | first epoch s | last loss "
        "| test accuracy | max weight difference vs one device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = {"plain": None, "one": None, "mirrored": "mirrored", "multiworker": "multiworker0"}
    for (mode, row), name in zip(rows.items(), SETTINGS, strict=True):
        key = keys[mode]
        diff = "0 (reference)" if mode == "one" else "n/a (other shuffling)"
        if key is not None:
            diff = f"{differences[key]:.1e}"
            if mode == "multiworker":
                diff += f" (worker 1: {differences['multiworker1']:.1e})"
        lines.append(
            f"| {name} | {row['images_per_s']:.0f} | {row['steps_per_s']:.2f} "
            f"| {row['images_per_s'] / base:.2f}x | {row['first_epoch_s']:.1f} "
            f"| {row['loss'][-1]:.4f} | {row['test_accuracy']:.4f} | {diff} |"
        )
    lines += [
        "",
        "What this shows: the point here is correctness, not speed. The two logical CPU devices "
        "(and the two local worker processes) share the same 2 physical cores, so no speed-up is "
        "possible on this machine; what the table measures is the cost of the machinery (the "
        "per-step all-reduce and the split of each global batch; for the workers, gRPC "
        "collectives between processes). The weights agree with the one-device run to float32 "
        "rounding (different summation order), which is what `tests/test_distribute.py` asserts "
        "(tolerance 1e-5). `plain` shuffles with Keras' own order, so its weights differ by "
        "design; its speed shows what the `tf.data` pipeline costs or saves. Each setting "
        "runs once, alone, on a shared machine: read the ratios as +-30%.",
        "",
        'How it maps to real hardware: `strategy="mirrored"` puts one replica on each GPU of a '
        "host (NCCL all-reduce), so a step's global batch is computed in parallel and the "
        "images/s grow with the number of GPUs while the model is large enough for the "
        "all-reduce to be a small part of a step (for LeNet-5 it would not be; for the ResNets "
        'and Inceptions of the zoo it is). `strategy="multiworker"` does the same across hosts '
        "listed in `TF_CONFIG`, where the network bandwidth of the all-reduce limits the gain. "
        "Keep the global batch a multiple of the replica count, and scale it (and the learning "
        "rate) with the number of replicas to keep every device busy.",
        "",
    ]
    return "\n".join(lines)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


if __name__ == "__main__":
    raise SystemExit(main())
