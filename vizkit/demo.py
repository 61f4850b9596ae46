"""``vizkit demo``: train LeNet-5 and an RBM on MNIST offline and export every figure kind.

The demo is the README's main job: on 2 CPU cores it runs in about two minutes and writes an
HTML report (``index.html``) linking filters, feature maps of every layer, hypercolumns,
activation maximisation of every conv channel and every class, saliency (all methods),
Grad-CAM, occlusion, DeepDream on a photo, top-activating examples, the dead-map diagnosis,
"Which map to trust" (faithfulness metrics and the randomisation sanity check of every
explanation method), RBM filters and reconstructions, the training curves and the
misclassified test digits.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core.checks import positive_int

MODEL = "lenet5_relu"
SALIENCY_METHODS = ("vanilla", "gradxinput", "smoothgrad", "integrated", "guided")


@dataclass(frozen=True)
class DemoSizes:
    """How much work each stage does."""

    n_train: int  # LeNet-5 training images
    epochs: int
    n_images: int  # test digits explained per image (one per class first)
    n_pool: int  # images searched for top-activating examples and the diagnosis
    maximize_steps: int
    dream_octaves: int
    dream_steps: int
    photo_side: int  # DeepDream photo side in pixels
    rbm_train: int
    rbm_epochs: int
    n_wrong: int  # misclassified digits shown
    few_layers: bool  # only the first layers (rendering 120-tile grids is the slow part)
    n_trust: int  # test digits of the "Which map to trust" card
    trust: tuple[tuple[str, tuple[str, ...]], ...]  # vizkit.evaluate options (none: defaults)


FULL = DemoSizes(
    n_train=30000,
    epochs=3,
    n_images=6,
    n_pool=1000,
    maximize_steps=128,
    dream_octaves=3,
    dream_steps=20,
    photo_side=168,
    rbm_train=3000,
    rbm_epochs=5,
    n_wrong=24,
    few_layers=False,
    n_trust=32,
    trust=(),
)
QUICK = DemoSizes(
    n_train=1000,
    epochs=1,
    n_images=2,
    n_pool=64,
    maximize_steps=4,
    dream_octaves=1,
    dream_steps=2,
    photo_side=56,
    rbm_train=200,
    rbm_epochs=1,
    n_wrong=8,
    few_layers=True,
    n_trust=4,
    trust=(
        ("methods", ("vanilla", "guided", "gradcam")),
        ("metrics", ("deletion", "randomization")),
    ),
)


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train LeNet-5 (and the seed 000 RBM) on MNIST and export every figure with an HTML index.

    Parameters
    ----------
    out : str or Path
        Output folder; it must be empty or missing unless ``overwrite=True``. Reusing a folder
        keeps files of an earlier run made with the same weights and parameters, replaces
        those it makes again and leaves the others listed in the report.
    quick : bool
        Tiny sizes and few optimisation steps (a smoke test in well under a minute).
    epochs : int or None
        LeNet-5 training epochs (default 3, or 1 with ``quick``).
    seed : int
        Seeds training, the RBM and the optimisations.
    progress : bool
        Progress bars and stage timings on stderr.
    overwrite : bool
        Allow a non-empty output folder.

    Returns
    -------
    Path
        The report's ``index.html``.

    Raises
    ------
    FileExistsError
        If ``out`` is a non-empty folder and ``overwrite`` is False.
    """
    sizes = QUICK if quick else FULL
    if epochs is not None:
        sizes = DemoSizes(**{**sizes.__dict__, "epochs": positive_int(epochs, "epochs")})
    out = _check_out(Path(out), overwrite=overwrite)
    stages = _Stages(progress)

    import models

    data = stages.run("load MNIST", models.load_dataset, "mnist")
    trained = stages.run(
        "train LeNet-5",
        models.train,
        MODEL,
        data,
        epochs=sizes.epochs,
        batch_size=64,
        max_train=sizes.n_train,
        seed=seed,
        verbose=progress,
        out=out / "model" / MODEL,
        overwrite=overwrite,
    )
    model = trained.model
    images = _one_per_class(data.x_test, data.y_test, sizes.n_images)
    pool = data.x_test[: sizes.n_pool]
    common = {"progress": progress, "overwrite": overwrite, "model_name": "lenet5", "dpi": 80}
    stages.run("export figures", _export_all, model, images, pool, out, sizes, seed, common)
    stages.run("which map to trust", _trust_card, model, data.x_test[: sizes.n_trust], out,
               sizes, common)  # fmt: skip
    extras = {
        "Training (seed 001)": stages.run(
            "training figures", _training_figures, trained, data, sizes
        ),
        "Saliency methods": stages.run("saliency methods", _saliency_figure, model, images),
        "DeepDream on a photo": stages.run("deepdream", _dream_figure, model, sizes, seed),
        "RBM (seed 000)": stages.run(
            "train RBM", _rbm_figures, data, sizes, seed=seed, progress=progress
        ),
    }
    from .report import add_figures

    index = stages.run("write index", add_figures, out, extras, overwrite=overwrite, dpi=80)
    stages.done(index, trained.test_accuracy)
    return index


# -- stages -------------------------------------------------------------------------------------
class _Stages:
    """Times each stage and reports it on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.start = time.perf_counter()

    def run(self, name: str, fn, *args, **kwargs):
        if self.enabled:
            print(f"vizkit demo: {name} ...", file=sys.stderr, flush=True)
        begin = time.perf_counter()
        result = fn(*args, **kwargs)
        if self.enabled:
            seconds = time.perf_counter() - begin
            print(f"vizkit demo: {name} done in {seconds:.1f} s", file=sys.stderr, flush=True)
        return result

    def done(self, index: Path, accuracy: float) -> None:
        if self.enabled:
            total = time.perf_counter() - self.start
            print(
                f"vizkit demo: LeNet-5 test accuracy {accuracy:.4f}; finished in {total:.0f} s",
                file=sys.stderr,
                flush=True,
            )


def _check_out(out: Path, *, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} is a file; the demo needs a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {str(out)!r} is not empty; choose another folder or pass "
            "overwrite=True (--overwrite) to reuse it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _one_per_class(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """The first test image of classes 0, 1, 2, ... (then the next ones), ``n`` in all."""
    firsts = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)]
    rest = [i for i in range(len(x)) if i not in set(firsts)]
    return np.asarray(x[(firsts + rest)[:n]])


def _export_all(model, images, pool, out: Path, sizes: DemoSizes, seed: int, common: dict):
    from .core.layers import iter_layers, resolve_layer
    from .report import export

    paths = [p for p, layer in iter_layers(model) if len(layer.output.shape) == 4]
    convs = [p for p in paths if "conv" in type(resolve_layer(model, p)[1]).__name__.lower()]
    # Grad-CAM needs a conv layer with some spatial extent (LeNet's c5 is 1x1).
    spatial = [p for p in convs if min(resolve_layer(model, p)[1].output.shape[1:3]) > 1]
    if sizes.few_layers:
        paths, convs = paths[:2], convs[:1]
    calls = [
        {"methods": ["feature_maps"], "layers": paths, "images": images[:3]},
        # Kernels deeper than the first layer have too many input channels to read as images.
        {"methods": ["filters"], "layers": convs[:2], "images": images[:1]},
        {
            "methods": ["hypercolumns", "saliency", "occlusion"],
            "images": images,
            # Integrated gradients follow the strokes; all methods are compared in an extra figure.
            "method_options": {"saliency": {"method": "integrated"}},
        },
        {"methods": ["gradcam"], "layers": spatial[-1:], "images": images},
        {
            "methods": ["maximize"],
            # Every conv channel and every class. A first-layer channel sees 5x5 pixels, so the
            # image maximising its mean activation is nearly uniform: its filters show it better.
            "layers": [*convs, "predictions"],
            "images": images[:1],
            "method_options": {"maximize": {"first": 1000, "steps": sizes.maximize_steps}},
        },
        {"methods": ["top_activating"], "layers": convs[:2], "images": pool, "diagnose": True},
    ]
    index = None
    for call in calls:
        options = {"diagnose": False, **common, **call}
        index = export(model, options.pop("images"), out, **options)
    return index


def _trust_card(model, images, out: Path, sizes: DemoSizes, common: dict):
    """The "Which map to trust" section: every explanation method scored on the test digits
    (deletion, insertion, muFidelity, the cascading randomisation check)."""
    from .report import export

    options = {key: list(value) for key, value in sizes.trust}
    return export(model, images, out, methods=[], diagnose=False,
                  evaluate={**options, "count": len(images)}, **common)  # fmt: skip


# -- extra figures ------------------------------------------------------------------------------
def _training_figures(trained, data, sizes: DemoSizes) -> list:
    from .plot import plot_grid, plot_history, plot_message

    fig = plot_history(
        trained.history, title=f"LeNet-5 on MNIST: test accuracy {trained.test_accuracy:.2%}"
    )

    probs = trained.model.predict(data.x_test, batch_size=512, verbose=0)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != data.y_test)[: sizes.n_wrong]
    if len(wrong):
        grid = plot_grid(
            data.x_test[wrong],
            titles=[f"true {data.y_test[i]}, pred {predicted[i]}" for i in wrong],
            ncols=min(8, len(wrong)),
            cmap="gray",
            title=f"Misclassified test digits ({int((predicted != data.y_test).sum())} of "
            f"{len(data.y_test)})",
        )
    else:
        grid = plot_message("No misclassified test digits")
    return [("Training curves", fig), ("Misclassified test digits", grid)]


def _saliency_figure(model, images) -> list:
    import vizkit

    from .plot import plot_grid

    maps = {m: vizkit.saliency(model, images, method=m) for m in SALIENCY_METHODS}
    tiles, titles = [], []
    for i, image in enumerate(images):
        tiles.append(image[..., 0])
        titles.append(f"image {i}")
        for m in SALIENCY_METHODS:
            tiles.append(np.abs(maps[m][i]))
            titles.append(m)
    fig = plot_grid(
        tiles,
        titles=titles,
        ncols=1 + len(SALIENCY_METHODS),
        cmap="magma",
        title="Saliency of the predicted class (absolute values)",
    )
    return [("Saliency: all methods", fig)]


def demo_photo(side: int) -> np.ndarray:
    """scikit-image's astronaut photo as a grey ``(side, side, 1)`` float32 image in [0, 1]."""
    import cv2
    from skimage import data

    rgb = data.astronaut()[:, 64:448]  # the face and shoulders
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
    return (small.astype(np.float32) / 255.0)[..., None]


def _dream_figure(model, sizes: DemoSizes, seed: int) -> list:
    import vizkit

    from .plot import plot_grid

    photo = demo_photo(sizes.photo_side)
    # c1_conv only brightens the photo (its channels like uniform light): dream with c3_conv,
    # gently and strongly (larger steps saturate the 28x28 tiles).
    strengths = (0.003, 0.006)
    dreams = [
        vizkit.deepdream(
            model,
            photo,
            ["c3_conv"],
            octaves=sizes.dream_octaves,
            steps=sizes.dream_steps,
            step_size=step,
            seed=seed,
        )
        for step in strengths
    ]
    fig = plot_grid(
        [photo, *dreams],
        titles=["photo (skimage astronaut)", *(f"c3_conv, step {s}" for s in strengths)],
        ncols=3,
        cmap="gray",
        vmin=0.0,
        vmax=1.0,
        title="DeepDream with the MNIST LeNet-5 (28x28 tiles)",
    )
    return [("DeepDream on a photo", fig)]


def _rbm_figures(data, sizes: DemoSizes, *, seed: int, progress: bool) -> list:
    import models

    from .plot import plot_grid

    x = data.x_train[: sizes.rbm_train].reshape(-1, 784)
    # Seed 000's settings: 64 hidden units, learning rate 0.01, momentum 0.95, batches of 10.
    rbm = models.RBM(784, 64, learning_rate=0.01, momentum=0.95, seed=seed)
    errors = rbm.fit(x, epochs=sizes.rbm_epochs, batch_size=10, verbose=progress)
    weights = np.asarray(rbm.weights).T.reshape(-1, 28, 28)
    filters = plot_grid(
        weights,
        ncols=8,
        cmap="gray",
        title=f"RBM filters (64 hidden units), reconstruction error {errors[-1]:.4f}",
    )
    test = data.x_test[:10].reshape(-1, 784)
    recon = rbm.reconstruct(test)
    pairs = np.concatenate([test, recon]).reshape(-1, 28, 28)
    reconstructions = plot_grid(
        pairs,
        titles=["input"] * len(test) + ["reconstruction"] * len(test),
        ncols=len(test),
        cmap="gray",
        title="RBM reconstructions of test digits",
    )
    return [("RBM filters", filters), ("RBM reconstructions", reconstructions)]


__all__ = ["FULL", "QUICK", "DemoSizes", "demo_photo", "run_demo"]
