"""The ``vizkit`` command line: train and list models, run one method, export a report, diagnose.

Subcommands live in :data:`COMMANDS` (name -> help, argument setup, handler), so adding one is
one entry. Heavy modules (TensorFlow, Keras, matplotlib) are imported inside the handlers, so
``vizkit --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .registry import METHODS, MethodSpec, Option

PROG = "vizkit"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
IMAGE_HINT = "image files (png, jpg, bmp, tif); resized to the model's input size"


@dataclass(frozen=True)
class Command:
    """One subcommand: its one-line help, how to add its arguments, and its handler."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Errors are printed as one line on stderr (exit code 1; 2 for bad arguments); ``--debug``
    shows the full traceback instead.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and argparse usage errors (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="See inside convolutional networks: train small models, draw filters, "
        "feature maps, saliency, Grad-CAM, occlusion, activation maximisation and DeepDream, "
        "and export HTML reports.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
        )
        command.configure(p)
    return parser


# -- shared arguments ---------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    if many:
        p.add_argument("model", nargs="+", help="saved model files (.keras or .h5)")
    else:
        p.add_argument("model", help="saved model file (.keras or legacy .h5)")
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="load models with Keras safe mode off (runs stored Lambda code: trusted files only)",
    )


def _image_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--images", nargs="+", default=[], metavar="FILE", help=IMAGE_HINT)
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="take test images from a dataset instead (mnist, mnist5k, fashion_mnist, digits, ...)",
    )
    p.add_argument("--count", type=_positive, default=8, help="number of dataset images")
    p.set_defaults(images_required=required)


def _layer_args(p: argparse.ArgumentParser, what: str = "layer to draw") -> None:
    p.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help=f"{what} (name, nested path like backbone/conv1, or index); repeat for several; "
        "default: the method's usual layers",
    )


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target", type=int, help="class index to explain (default: each image's predicted class)"
    )


def _out_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="figure file (.png, .pdf or .svg) or a folder; with several layers or images "
        "the layer and image are added to the file name",
    )
    p.add_argument("--save-array", action="store_true", help="also save the computed array as .npy")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# -- method subcommands (generated from the method table) ---------------------------------------
def parse_units(text: str) -> list[int]:
    """``"3"`` -> [3], ``"0-3"`` -> [0, 1, 2, 3]: one ``--units`` word (indices, never a count)."""
    try:
        if "-" in text.strip("-"):
            low, high = (int(part) for part in text.split("-", 1))
            if high < low:
                raise ValueError
            return list(range(low, high + 1))
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a unit index or a range like 0-7, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"unit indices are >= 0, got {text!r}")
    return [value]


_OPTION_PARSERS = {"int": _positive, "float": float, "str": str, "units": parse_units}


def _add_option(p: argparse.ArgumentParser, option: Option) -> None:
    help_text = option.help
    if option.default is not None and option.type != "bool":
        help_text += f" (default: {option.default})"
    if option.type == "bool":
        p.add_argument(option.cli_flag, dest=option.name, action="store_true", help=help_text)
        return
    kwargs: dict = {"dest": option.name, "type": _OPTION_PARSERS[option.type], "help": help_text}
    if option.choices:
        kwargs["choices"] = option.choices
    if option.type == "units":
        kwargs.update(nargs="+", action="extend", metavar="UNIT")
    p.add_argument(option.cli_flag, **kwargs)


def _configure_method(spec: MethodSpec) -> Callable[[argparse.ArgumentParser], None]:
    def configure(p: argparse.ArgumentParser) -> None:
        _model_args(p)
        if spec.needs_images:
            _image_args(p)
        if spec.layers is not None:
            _layer_args(p)
        if spec.target:
            _target_args(p)
        for option in spec.options:
            _add_option(p, option)
        _out_args(p)
        p.set_defaults(method_spec=spec)

    return configure


def _run_method(args: argparse.Namespace) -> int:
    import numpy as np

    from .core.files import atomic_write
    from .plot.renderers import to_bytes
    from .report.export import render_method

    spec: MethodSpec = args.method_spec
    model = _load_model(args.model, unsafe=args.unsafe)
    images = _read_images(args, model, required=True) if spec.needs_images else None
    options = {
        o.name: getattr(args, o.name)
        for o in spec.options
        if getattr(args, o.name) not in (None, False)
    }
    if images is None:  # filters / maximize need no images; the method ignores them
        images = np.zeros((1, *_input_hw(model)), np.float32)
    results = render_method(
        model,
        images,
        spec.name,
        layers=getattr(args, "layer", None),
        targets=getattr(args, "target", None),
        options=options,
        progress=None,
    )
    if not results:
        raise ValueError(f"no layer suits {spec.name}; pick one with --layer")
    several_layers = len({layer for layer, _, _, _ in results}) > 1
    written = []
    for layer, image, array, fig in results:
        path = _output_path(
            args.out,
            spec.name,
            layer if several_layers else None,
            image if len(images) > 1 else None,
        )
        for target in [path] + ([path.with_suffix(".npy")] if args.save_array else []):
            if target.exists() and not args.overwrite:
                raise FileExistsError(
                    f"{str(target)!r} already exists; pass --overwrite to replace it"
                )
        atomic_write(path, to_bytes(fig, path.suffix[1:], 100))
        written.append(path)
        if args.save_array:
            atomic_write(path.with_suffix(".npy"), _npy_bytes(array))
            written.append(path.with_suffix(".npy"))
    for path in written:
        print(path)
    return 0


def _output_path(out: str, method: str, layer: str | None, image: int | None) -> Path:
    from .core.files import safe_name

    out_path = Path(out).expanduser()
    if out_path.suffix.lower() in FIGURE_SUFFIXES:
        folder, stem, suffix = out_path.parent, out_path.stem, out_path.suffix.lower()
    else:
        folder, stem, suffix = out_path, method, ".png"
    if layer is not None:
        stem += f"_{safe_name(layer)}"
    if image is not None:
        stem += f"_img{image:03d}"
    return folder / f"{stem}{suffix}"


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    if isinstance(array, dict) and "rows" in array:  # top_activating: indices and scores per unit
        rows = array["rows"]
        np.save(buffer, np.array([[np.asarray(i), np.asarray(s)] for i, s in rows]))
    elif isinstance(array, dict):  # maximize: the images, one per unit
        np.save(buffer, np.asarray(array["images"]))
    else:
        np.save(buffer, np.asarray(array))
    return buffer.getvalue()


# -- other subcommands --------------------------------------------------------------------------
def _configure_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'res*'")


def _run_models(args: argparse.Namespace) -> int:
    import models

    names = models.list_models(args.pattern)
    if not names:
        raise ValueError(f"no registered model matches {args.pattern!r}; try 'vizkit models'")
    print("\n".join(names))
    return 0


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered architecture (see 'vizkit models')")
    p.add_argument("--dataset", required=True, help="dataset name (mnist, fashion_mnist, ...)")
    p.add_argument("--epochs", type=_positive, default=1, help="training epochs")
    p.add_argument("--batch-size", type=_positive, default=128, help="images per step")
    p.add_argument(
        "--out", required=True, metavar="PATH", help="saves PATH.keras and the PATH.json sidecar"
    )
    p.add_argument("--max-train", type=_positive, help="train on a random subset of this size")
    p.add_argument("--optimizer", default="adam", help="Keras optimizer name (default: adam)")
    p.add_argument("--learning-rate", type=float, help="peak learning rate (optimizer default)")
    p.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="cosine: one warm-up epoch, then cosine decay to zero",
    )
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay")
    p.add_argument(
        "--augment",
        choices=("shift", "flip", "shift+flip"),
        help="random shifts and/or left-right flips of the training images",
    )
    p.add_argument("--label-smoothing", type=float, default=0.0, help="in [0, 1)")
    p.add_argument("--overwrite", action="store_true", help="replace existing model files")


def _run_train(args: argparse.Namespace) -> int:
    import models

    result = models.train(
        args.name,
        args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        out=args.out,
        overwrite=args.overwrite,
        max_train=args.max_train,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        augment=args.augment or False,
        label_smoothing=args.label_smoothing,
    )
    print(f"test accuracy: {result.test_accuracy:.4f}")
    if result.path is not None:
        print(f"model: {result.path}")
        print(f"sidecar: {Path(result.path).with_suffix('.json')}")
    return 0


def _configure_export(p: argparse.ArgumentParser) -> None:
    _model_args(p, many=True)
    _image_args(p)
    _layer_args(p, "layer for the per-layer methods")
    _target_args(p)
    p.add_argument(
        "--methods",
        default="filters,feature_maps,gradcam,saliency,occlusion",
        help=f"comma-separated methods or 'all'; known: {','.join(METHODS)}",
    )
    p.add_argument("--formats", default="png", help="comma-separated: png, pdf, svg")
    p.add_argument(
        "--style",
        choices=("raster", "matplotlib"),
        default="raster",
        help="raster: fast NumPy/OpenCV pictures, text in the captions (default); matplotlib: "
        "titled figures with colour bars (slower; PDF and SVG are always matplotlib)",
    )
    p.add_argument(
        "--preprocess", metavar="PRESET", help="preprocessing preset applied before the model"
    )
    p.add_argument(
        "--labels",
        metavar="SPEC",
        help="class names for captions: 'imagenet' or a file with one name per line "
        "(default for --dataset: the dataset's class names)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace files from other exports")
    p.add_argument("--no-resume", action="store_true", help="do not skip files already written")
    p.add_argument("--no-diagnose", action="store_true", help="leave out the diagnosis table")
    p.add_argument(
        "--workers", type=int, metavar="N", help="threads drawing figures (default: up to 4)"
    )
    p.add_argument("--page-size", type=_positive, default=200, help="figures per HTML page")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_export(args: argparse.Namespace) -> int:
    from .report import export

    loaded = {}
    for path in args.model:
        name = Path(path).stem
        loaded[name if name not in loaded else path] = _load_model(path, unsafe=args.unsafe)
    labels = args.labels
    if args.images and args.dataset:
        raise ValueError("pass either --images files or --dataset, not both")
    if args.dataset:
        import models

        data = models.load_dataset(args.dataset)
        # One (x, y) batch: the true labels go into the captions.
        images = [(data.x_test[: args.count], data.y_test[: args.count])]
        names = getattr(data, "class_names", None)
        labels = labels if labels is not None else (list(names) if names else None)
    elif len(args.images) == 1 and Path(args.images[0]).is_dir():
        images = args.images[0]  # a folder: streamed, never read at once
    elif args.images:
        images = list(args.images)
    else:
        raise ValueError("no images: pass --images FILE ... (or a folder) or --dataset NAME")
    methods = args.methods if args.methods == "all" else _split(args.methods)
    index = export(
        loaded,
        images,
        args.out,
        methods=methods,
        layers=args.layer,
        targets=args.target,
        formats=_split(args.formats),
        overwrite=args.overwrite,
        resume=not args.no_resume,
        progress=not args.quiet,
        diagnose=not args.no_diagnose,
        style=args.style,
        preprocess=args.preprocess,
        labels=labels,
        workers=args.workers,
        page_size=args.page_size,
    )
    print(index)
    return 0


def _configure_diagnose(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    _image_args(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def _run_diagnose(args: argparse.Namespace) -> int:
    import json

    import vizkit

    model = _load_model(args.model, unsafe=args.unsafe)
    images = _read_images(args, model, required=True)
    result = vizkit.diagnose(model, images)
    if args.json:
        from .core.jsonutil import jsonable

        print(json.dumps(result.to_dict(), indent=1, default=jsonable))
    else:
        print(result.summary())
    return 0


# -- loading ------------------------------------------------------------------------------------
def _load_model(path: str, *, unsafe: bool):
    import models

    return models.load_model(path, safe_mode=not unsafe)


def _input_hw(model) -> tuple[int, int, int]:
    from .core.images import model_input_shape

    h, w, c = model_input_shape(model)
    return (h or 32, w or 32, c or 3)


def _read_images(args: argparse.Namespace, model, *, required: bool):
    """Images from ``--images`` files or ``--dataset`` (uint8 or float NHWC), or None."""
    if args.images and args.dataset:
        raise ValueError("pass either --images files or --dataset, not both")
    if args.dataset:
        import models

        data = models.load_dataset(args.dataset)
        return data.x_test[: args.count]
    if args.images:
        h, w, c = _input_hw(model)
        return read_image_files(args.images, size=(h, w), channels=c)
    if required:
        raise ValueError("no images: pass --images FILE ... or --dataset NAME [--count N]")
    return None


def read_image_files(
    paths: Sequence[str], *, size: tuple[int, int] | None = None, channels: int | None = None
):
    """Read image files into one float32 batch ``(N, H, W, C)`` in [0, 1], RGB order.

    Each image is resized to ``size = (H, W)`` when given and converted to ``channels`` when
    given (:func:`vizkit.core.sources.read_image`), so that mixed files stack.
    """
    import numpy as np

    from .core.sources import read_image

    batch = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image file at {path!r}")
        batch.append(read_image(path, size=size, channels=channels))
    shapes = {b.shape for b in batch}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; resize them first")
    return np.stack(batch)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the report")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and few steps (a smoke test, under a minute)",
    )
    p.add_argument(
        "--epochs", type=_positive, help="LeNet-5 training epochs (default: 3, or 1 with --quick)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for training and optimisation")
    p.add_argument(
        "--overwrite", action="store_true", help="reuse a non-empty output folder (replace files)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage timings")


def _run_demo(args: argparse.Namespace) -> int:
    import time

    from .demo import run_demo

    start = time.perf_counter()
    index = run_demo(
        args.out,
        quick=args.quick,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(f"vizkit demo finished in {time.perf_counter() - start:.0f} s; open {index}")
    return 0


# Subcommands in the order --help lists them. More are added as entries, e.g.
# COMMANDS["demo"] = Command("train LeNet-5 on MNIST and export every figure", configure, run).
COMMANDS: dict[str, Command] = {
    "models": Command("list the registered architectures", _configure_models, _run_models),
    "train": Command(
        "train a registered architecture on a dataset and save it",
        _configure_train,
        _run_train,
    ),
    **{
        spec.command: Command(spec.help, _configure_method(spec), _run_method)
        for spec in METHODS.values()
    },
    "export": Command(
        "export figure grids for several methods, layers and images with an HTML index",
        _configure_export,
        _run_export,
    ),
    "diagnose": Command(
        "find dead and constant feature maps layer by layer", _configure_diagnose, _run_diagnose
    ),
}
COMMANDS["demo"] = Command(
    "train LeNet-5 and an RBM on MNIST (offline) and export every figure with an HTML report",
    _configure_demo,
    _run_demo,
    description="Trains LeNet-5 on the bundled MNIST and the seed 000 RBM, then writes filters, "
    "feature maps, hypercolumns, activation maximisation, saliency (all methods), Grad-CAM, "
    "occlusion, DeepDream on a photo, top-activating images, the dead-map diagnosis, RBM "
    "figures, training curves and misclassified digits, linked from DIR/index.html. About two "
    "minutes on 2 CPU cores.",
)


if __name__ == "__main__":
    sys.exit(main())
