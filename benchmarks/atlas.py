"""The atlas of LeNet-5 over 10,000 MNIST test digits, on the local engine and on Ray.

Run ``python -m benchmarks.atlas`` (a few minutes on 2 cores); ``--quick`` is a small smoke run
written to ``results/quick/``. Every file of the Ray site is compared with the local one, byte
for byte. The result goes into ``results/scale.md`` under the heading ``## The atlas`` (other
sections of that file are kept).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .timing import markdown_table, write_section

SECTION = "## The atlas"


def site_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.atlas", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 digits, few steps")
    parser.add_argument("--steps", type=int, default=None, help="maximisation steps (256)")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)

    import ray

    import models
    import vizkit
    from vizkit.engines import RayEngine

    from .timing import RESULTS, machine, ray_section_head

    steps = args.steps or (16 if args.quick else 256)
    data = models.load_dataset("mnist")
    x = data.x_test[: 1000 if args.quick else 10000]
    model = models.train("lenet5_relu", data, epochs=1, max_train=10000, verbose=False).model
    rows, sites = [], {}
    with tempfile.TemporaryDirectory(prefix="vizkit-atlas-") as tmp:
        for label, workers in (("local", None), ("ray, 2 workers", 2)):
            if workers is not None:
                ray.init(
                    num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR"
                )
            engine = "local" if workers is None else RayEngine(workers=workers)
            row = {"engine": label}
            for call in ("first call", "second call"):
                out = Path(tmp) / f"{label}-{call}".replace(" ", "_").replace(",", "")
                start = time.perf_counter()
                vizkit.atlas(model, x, out, engine=engine, batch_size=args.batch_size,
                             maximize_steps=steps, progress=False)  # fmt: skip
                row[f"{call} s"] = time.perf_counter() - start
                sites[(label, call)] = site_files(out)
            if workers is not None:
                ray.shutdown()
            rows.append(row)
    reference = sites[("local", "first call")]
    for key, files in sites.items():
        if files != reference:
            differ = sorted(f for f in reference.keys() | files.keys()
                            if files.get(f) != reference.get(f))  # fmt: skip
            raise AssertionError(f"{key} wrote another site: {differ[:5]}")
    for row in rows:
        for call in ("first call", "second call"):
            row[f"{call} speed vs local"] = rows[0][f"{call} s"] / row[f"{call} s"]
    layers = json.loads(reference["atlas.json"])["layers"]
    channels = ", ".join(str(layer["channels"]) for layer in layers)
    pngs = sum(f.endswith(".png") for f in reference)
    size = sum(len(b) for b in reference.values()) / 2**20
    command = "python -m benchmarks.atlas" + (" --quick" if args.quick else "")
    info = machine()
    text = [
        *ray_section_head(SECTION, command, info),
        f"`vizkit.atlas(model, x, out, batch_size={args.batch_size}, maximize_steps={steps}, "
        f"engine=...)`: LeNet-5 trained for one epoch on 10,000 digits, {len(x):,} MNIST test "
        f"digits; every channel of its {len(layers)} conv layers ({channels} channels): "
        f"{pngs} PNGs and {len(reference) - pngs} pages / manifest, {size:.1f} MiB. One call is "
        "the pass over the data (on the engine) plus the maximisation and the writing (in this "
        "process, the same for both engines). A local Ray with 2 CPUs, one CPU per worker; the "
        "first Ray call starts the workers (each imports TensorFlow and loads the model). Every "
        "file of every site is identical, byte for byte, to the local engine's first site "
        "(asserted by the script).",
        "",
        *markdown_table(rows),
        "",
    ]
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    write_section(out / "scale.md", SECTION, "\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
