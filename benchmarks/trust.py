"""Which map to trust: Adebayo et al.'s sanity check on LeNet-5 / MNIST, the report card, and the
trust metrics' time against the raw model passes they need.

Run ``python -m benchmarks.trust`` (about 5-10 minutes on 2 CPU cores) or ``--quick`` for a
smoke run written to ``results/quick/``.

(a) *Reproduction.* LeNet-5 (``lenet5_relu``) is trained on MNIST, then the weights of a copy
are re-initialised from the top layer down (cascading) and one layer at a time (independent);
the Spearman rank correlation of the absolute maps with the trained model's maps is recorded per
layer (also SSIM and HOG). Adebayo et al. (2018) found that vanilla gradients decorrelate while
guided backpropagation stays similar to the original. The whole report card
(:func:`vizkit.evaluate`) follows on the same test digits.

(b) *Speed.* Each metric is timed against the raw compiled passes it needs (``peers.Limit``:
the same number of forward or forward+backward passes through one compiled model call at its
fastest chunk size), in alternating rounds; the target is a ratio of at most 1.3, as for the
methods in ``peers.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from .peers import OVERHEAD_TARGET, Limit, small_model
from .timing import RESULTS, load_average, machine, median_times

METHODS_COMPARED = ("vanilla", "guided")
SPEED_NOTE = """\
What limits these ratios:

* **Noise.** Deletion and insertion run the same code (only whether the image or the baseline
  fills the chosen pixels differs), so the gap between their ratios is the measurement noise of
  this shared machine (2 cores, other jobs running); single runs of the same task ranged over
  +-30 %, hence the repeated runs and the median.
* **Deletion / insertion / muFidelity**: the masked copies of a chunk are made by one NumPy
  select and scored in one compiled call. Building them inside the compiled call instead
  (broadcast compare and select) measured 1.34-1.38x the limit against 1.17-1.20x for the
  select (alternating A/B, deletion, 32 images), so the select stays. The per-image ranking
  of the 4096 pixels must be stable (ties in pixel order, the same on every CPU): one sort of
  64-bit keys (the value's bits above the pixel index) instead of a stable argsort of the
  values takes it from 7.5 to 2.7 ms; the copies go 88 a call (8 images x 11 steps, 4 calls).
  Without targets the predicted class is read off the copy that is the image itself (deletion's
  first, insertion's last), so the n forward passes for the targets are gone: the limit counts
  n x 11 passes now (it counted n + n x 11 before).
* **Randomisation**: besides the passes, every new map is ranked for the Spearman correlation,
  in a worker thread while the next maps are computed (before: 1.5-1.9x the limit). The
  ranking was the largest cost left (a third of the overhead, measured by replacing it with a
  no-op: 1.33 -> 1.10): the reference maps' ranks are standardised once and gathered in each
  new map's sorted order, so a new map is sorted but never scattered back, and only runs of
  tied values get an average rank (6 -> 2.3 ms per comparison of 32 maps, same values as
  `scipy.stats.spearmanr` to 1e-9). Re-initialising a layer assigns cached seeded draws kept
  as tensors, and the copy takes the model's weights variable to variable.
* **Max-sensitivity, completeness**: the noisy copies / path points go through the methods'
  own batched passes; completeness takes F(x) - F(baseline) from integrated gradients' own end
  scores, so it needs no extra pass.
* The model here is tiny (0.4 ms per 64x64 forward pass); on larger models the fixed costs
  (ranking, masks, glue) shrink relative to the passes."""


def reproduce(model, images, *, seed: int = 0) -> dict:
    """Cascading and independent randomisation of every default method on ``images``."""
    from vizkit.metrics import randomization_tests
    from vizkit.metrics.names import DEFAULT_METHODS

    out = {}
    for cascade in (True, False):
        results = randomization_tests(
            model, images, DEFAULT_METHODS, cascade=cascade, similarity="all", seed=seed, keep=0
        )
        out["cascade" if cascade else "independent"] = results
    return out


def layer_rows(results: dict, measure: str = "spearman") -> list[dict]:
    """One row per randomisation step: mean ± std similarity of each method's maps."""
    any_result = next(iter(results.values()))
    rows = []
    for step, layer in enumerate(any_result.layers):
        row = {"randomised": layer if not any_result.cascade else f"top .. {layer}"}
        for method, result in results.items():
            values = result.similarity[measure][step]
            row[method] = f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"
        rows.append(row)
    return rows


def speed(n: int = 32, *, repeats: int = 3, budget: float = 20.0, sample: int = 128) -> list[dict]:
    """Each metric's time against the raw passes it needs, on ``peers.small_model(64)``."""
    import vizkit
    from vizkit import metrics

    model = small_model(64)
    rng = np.random.default_rng(0)
    x = rng.random((n, 64, 64, 3), dtype=np.float32)
    maps = vizkit.explain(model, x, "vanilla")
    lim = Limit(model, sample=sample)
    layers = 4  # conv1, conv2, conv3, predictions
    tasks = {
        # name: (call, forward passes, forward+backward passes)
        # The predicted classes come from the copy that is the image itself: no extra pass.
        "deletion (10 steps)": (lambda: metrics.deletion(model, x, maps), n * 11, 0),
        "insertion (10 steps)": (lambda: metrics.insertion(model, x, maps), n * 11, 0),
        "muFidelity (128 subsets)": (lambda: metrics.mufidelity(model, x, maps), n + n * 128, 0),
        "max-sensitivity (vanilla, 10 samples)": (
            lambda: metrics.sensitivity(model, x, "vanilla"),
            n,
            n * 11,
        ),
        "randomisation (vanilla, cascade, 4 layers)": (
            lambda: metrics.randomization_test(model, x, "vanilla"),
            n,
            n * (layers + 1),
        ),
        "random logit (vanilla)": (
            lambda: metrics.random_logit_test(model, x, "vanilla"),
            n,
            2 * n,
        ),
        "completeness (integrated gradients, 20 steps)": (
            lambda: metrics.completeness(model, x, steps=20),
            n + 2 * n,
            n * 20,
        ),
    }
    rows = []
    for name, (call, fwd, bwd) in tasks.items():
        forward, backward = lim.runner(fwd, backward=False), lim.runner(bwd, backward=True)
        times, rounds = median_times(
            {"metric": call, "limit": lambda f=forward, b=backward, k=bwd: (f(), k and b())},
            repeats=repeats,
            budget=budget,
        )
        ratio = times["metric"] / times["limit"]
        rows.append(
            {
                "metric": name,
                "passes": " + ".join(
                    p for p in (f"{fwd} fwd" if fwd else "", f"{bwd} fwd+bwd" if bwd else "") if p
                ),
                "metric s": round(times["metric"], 4),
                "limit s": round(times["limit"], 4),
                "metric/limit": round(ratio, 3),
                f"met (<= {OVERHEAD_TARGET})": "yes" if ratio <= OVERHEAD_TARGET else "NO",
                "rounds": rounds,
            }
        )
        print(rows[-1], flush=True)
    for name, fn in (("sparseness", metrics.sparseness), ("complexity", metrics.complexity)):
        times, rounds = median_times({"metric": lambda fn=fn: fn(maps)}, repeats=repeats)
        rows.append(
            {
                "metric": f"{name} (no model pass)",
                "passes": "0",
                "metric s": round(times["metric"], 4),
                "limit s": "",
                "metric/limit": "",
                f"met (<= {OVERHEAD_TARGET})": "",
                "rounds": rounds,
            }
        )
    return rows


def combine(runs: list[list[dict]]) -> list[dict]:
    """One row per metric from repeated :func:`speed` runs: medians and the ratio's range."""
    target = f"met (<= {OVERHEAD_TARGET})"
    rows = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        row = {"metric": first["metric"], "passes": first["passes"]}
        row["metric s"] = round(float(np.median([r["metric s"] for r in same])), 4)
        if first["metric/limit"] == "":
            rows.append({**row, "limit s": "", "metric/limit": "", "range": "", target: ""})
            continue
        ratios = [r["metric/limit"] for r in same]
        median = float(np.median(ratios))
        row["limit s"] = round(float(np.median([r["limit s"] for r in same])), 4)
        row["metric/limit"] = round(median, 3)
        row["range"] = f"{min(ratios):.2f} .. {max(ratios):.2f}"
        row[target] = "yes" if median <= OVERHEAD_TARGET else "NO"
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trust",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes results/quick/")
    parser.add_argument("--epochs", type=int, default=3, help="LeNet-5 training epochs")
    parser.add_argument("--max-train", type=int, default=30000, help="training digits")
    parser.add_argument("--images", type=int, default=64, help="test digits evaluated")
    parser.add_argument(
        "--speed-runs",
        type=int,
        default=3,
        help="repeat the timing this many times and report the median ratio and its range "
        "(the machine is shared: single runs vary by +-30%%)",
    )
    parser.add_argument("--skip-speed", action="store_true", help="only the reproduction")
    parser.add_argument("--skip-reproduction", action="store_true", help="only the timing")
    args = parser.parse_args(argv)
    os.environ.pop("VIZKIT_MAX_STEPS", None)  # a benchmark runs the steps it claims
    quick = args.quick
    epochs, max_train, n = (1, 2000, 8) if quick else (args.epochs, args.max_train, args.images)
    out = RESULTS / "quick" if quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.trust" + (" --quick" if quick else "")
    if not quick and (args.epochs, args.max_train, args.images) != (3, 30000, 64):
        command += f" --epochs {args.epochs} --max-train {args.max_train} --images {args.images}"
    for flag, on in (("--skip-reproduction", args.skip_reproduction),
                     ("--skip-speed", args.skip_speed)):  # fmt: skip
        command += f" {flag}" if on else ""
    if args.speed_runs != parser.get_default("speed_runs"):
        command += f" --speed-runs {args.speed_runs}"
    start, load_start = time.time(), load_average()
    record: dict = {"meta": {"command": command, "machine": machine(), "load": load_start}}
    sections = [
        "# Which map to trust: sanity checks, report card and speed",
        "",
        f"Command: `{command}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{record['meta']['machine']['platform']}, {record['meta']['machine']['cpus']} CPUs, "
        f"TensorFlow {record['meta']['machine']['tensorflow']}, Keras "
        f"{record['meta']['machine']['keras']}; load average at the start: {load_start}.",
    ]
    if args.skip_reproduction:  # keep the earlier run's section (a) and its numbers
        sections += _earlier(out, record, "## (a)", keys=REPRODUCTION_KEYS)
    else:
        sections += _reproduction(epochs, max_train, n, out, record)
    if args.skip_speed:
        sections += _earlier(out, record, "## (b)", keys=("speed",))
    else:
        runs = [
            speed(
                8 if quick else 32,
                repeats=1 if quick else 3,
                budget=2.0 if quick else 20.0,
                sample=16 if quick else 128,
            )
            for _ in range(1 if quick else max(1, args.speed_runs))
        ]
        rows = combine(runs)
        record["speed"] = {"runs": runs, "combined": rows}
        sections += [
            "",
            "## (b) Speed: each metric against the raw model passes it needs",
            "",
            "peers.small_model(64) (3 conv layers, 64x64x3, softmax over 10, random weights), "
            f"{8 if quick else 32} random images, vanilla-gradient maps, targets = the predicted "
            "classes (counted as n forward passes where a metric makes them; deletion and "
            "insertion read them off a copy they score anyway). *limit* = those passes through "
            "one compiled "
            "model call at its fastest chunk size (`benchmarks.peers.Limit`), timed in the same "
            f"alternating rounds; target metric/limit <= {OVERHEAD_TARGET}. The whole timing "
            f"was repeated {len(runs)} time(s): the median ratio and the range over the runs.",
            "",
            _table(rows),
            "",
            SPEED_NOTE,
        ]
    minutes = (time.time() - start) / 60
    sections += ["", f"The run took {minutes:.1f} min."]
    (out / "trust.md").write_text("\n".join(sections) + "\n")
    (out / "trust.json").write_text(json.dumps(record, indent=1, default=_json) + "\n")
    print(f"wrote {out / 'trust.md'}")
    return 0


REPRODUCTION_KEYS = ("training", "randomization", "finding", "report_card_seconds", "report_card")


def _earlier(out: Path, record: dict, heading: str, *, keys) -> list[str]:
    """The ``heading`` section of the earlier ``trust.md`` (and its ``keys`` of ``trust.json``),
    marked as kept, so that running one part does not lose the other."""
    md, js = out / "trust.md", out / "trust.json"
    if not md.exists():
        return []
    text = md.read_text()
    start = text.find(heading)
    if start < 0:
        return []
    end = text.find("\n## ", start + len(heading))
    stop = text.find("\nThe run took", start)
    end = min(e for e in (end, stop, len(text)) if e >= 0)
    earlier = json.loads(js.read_text()) if js.exists() else {}
    record.update({k: earlier[k] for k in keys if k in earlier})
    meta = earlier.get("meta", {})
    lines = text[start:end].rstrip("\n").split("\n")
    # The section names the run that produced it: a section kept before keeps its own line.
    earlier_kept = [i for i, line in enumerate(lines) if line.startswith(_KEPT)]
    if earlier_kept:
        lines = [line for i, line in enumerate(lines) if i not in earlier_kept[:-1]]
        return ["", *lines]
    kept = (
        f"{_KEPT} (`{meta.get('command', '?')}`, load average at its start "
        f"{meta.get('load', '?')}); this run skipped it.*"
    )
    return ["", lines[0], "", kept, *lines[1:]]


_KEPT = "*Kept from the earlier run"


def _reproduction(epochs, max_train, n, out, record) -> list[str]:
    import models
    import vizkit
    from vizkit.metrics import write_trust_figures
    from vizkit.metrics.names import METRICS

    data = models.load_dataset("mnist")
    trained = models.train(
        "lenet5_relu", data, epochs=epochs, max_train=max_train, seed=0, verbose=False
    )
    model, images = trained.model, data.x_test[:n]
    record["training"] = {
        "model": "lenet5_relu",
        "epochs": epochs,
        "max_train": max_train,
        "test_accuracy": trained.test_accuracy,
        "data_source": data.source,
    }
    print(f"LeNet-5: test accuracy {trained.test_accuracy:.4f}", flush=True)
    results = reproduce(model, images)
    cascade, single = results["cascade"], results["independent"]
    record["randomization"] = {
        mode: {m: r.to_dict() for m, r in res.items()} for mode, res in results.items()
    }
    mean = {
        (m, s): np.nanmean(r.similarity[s], axis=1)
        for m, r in cascade.items()
        for s in ("spearman", "ssim")
    }
    final = {key: float(v[-1]) for key, v in mean.items()}
    # The paper's claim, made testable: guided backpropagation stays more similar to the
    # original than vanilla gradients at every step, clearly so once every layer is random.
    held = all(
        np.all(mean[("guided", s)] > mean[("vanilla", s)])
        and final[("guided", s)] - final[("vanilla", s)] >= 0.1
        for s in ("spearman", "ssim")
    )
    verdict = "reproduced" if held else "NOT reproduced (see the numbers)"
    record["finding"] = {
        "verdict": verdict,
        "final": {f"{m} {s}": v for (m, s), v in final.items()},
    }
    started = time.perf_counter()
    table = vizkit.evaluate(model, images, metrics=METRICS, progress=False)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    vizkit.evaluate(model, images[:32], progress=False)  # the defaults, as a report would run
    default_seconds = time.perf_counter() - started
    record["report_card_seconds"] = {
        "every metric": seconds,
        "defaults, 32 digits": default_seconds,
    }
    figures = write_trust_figures(table, out / "trust_report")
    record["report_card"] = table.to_dict()
    compared = {m: cascade[m] for m in METHODS_COMPARED}
    return [
        "",
        "## (a) Adebayo et al. (2018) on LeNet-5 trained on MNIST",
        "",
        f"`models.train('lenet5_relu', mnist, epochs={epochs}, max_train={max_train})`: test "
        f"accuracy {trained.test_accuracy:.4f} ({data.source}). {n} test digits, each explained "
        "for its predicted class; layers re-initialised with their own initialisers (seed 0).",
        "",
        f"**Finding: {verdict}.** Adebayo et al.: under cascading randomisation the "
        "vanilla-gradient map decorrelates from the trained model's, guided backpropagation "
        "stays similar. Criterion used here: guided's mean similarity is above vanilla's at "
        "every step, by at least 0.1 once every layer is random, in Spearman and in SSIM. With "
        "every layer random: Spearman of the absolute maps "
        f"{final[('vanilla', 'spearman')]:.3f} (vanilla) vs {final[('guided', 'spearman')]:.3f} "
        f"(guided); SSIM {final[('vanilla', 'ssim')]:.3f} vs {final[('guided', 'ssim')]:.3f}.",
        "",
        "Gradient x input and integrated gradients (black baseline) stay near 1 in Spearman for a "
        "reason of the data, not the model: an MNIST digit is black (0) outside its strokes, so "
        "their maps are 0 there for any weights and the rank order is dominated by the digit's "
        "support; occlusion with a black patch is likewise 0 on the background (Adebayo et al. "
        "make the same point about gradient x input).",
        "",
        "### Cascading randomisation, vanilla vs guided (Spearman of |maps|, mean ± std)",
        "",
        _table(layer_rows(compared)),
        "",
        "### Cascading randomisation, every method (Spearman)",
        "",
        _table(layer_rows(cascade)),
        "",
        "### Cascading randomisation, every method (SSIM)",
        "",
        _table(layer_rows(cascade, "ssim")),
        "",
        "### Cascading randomisation, every method (HOG)",
        "",
        _table(layer_rows(cascade, "hog")),
        "",
        "### Independent randomisation (one layer at a time, Spearman)",
        "",
        _table(layer_rows(single)),
        "",
        "Figures (from the report card below, same digits and seed): [randomisation strip]"
        "(trust_report/trust_randomization.png), [similarity per layer]"
        "(trust_report/trust_layers.png).",
        "",
        f"### The report card (`vizkit.evaluate`, every metric, {n} test digits)",
        "",
        f"It took {seconds:.0f} s; the default card (deletion, insertion, muFidelity, "
        f"randomisation) on {min(n, 32)} digits took {default_seconds:.0f} s.",
        "",
        table.to_markdown(),
        "Figures: " + ", ".join(f"[{t}](trust_report/{p.name})" for t, p in figures) + ".",
    ]


def _table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in cols) + " |" for row in rows]
    return "\n".join(lines)


def _json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
