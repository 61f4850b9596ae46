"""The ``vizkit`` command line: train and list models, run one method, export a report, diagnose.

Subcommands live in :data:`COMMANDS` (name -> help, argument setup, handler), so adding one is
one entry; the method subcommands are generated from the method table
(:data:`vizkit.registry.METHODS`). Heavy modules (TensorFlow, Keras, matplotlib) are imported
inside the handlers, after the arguments and files are checked, so ``vizkit --help``,
``vizkit models`` and mistakes answer at once; TensorFlow's start-up log lines are kept off the
terminal (:func:`import_tensorflow_quietly`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .registry import METHODS, MethodSpec, Option

PROG = "vizkit"
# Figure formats --out can name (matplotlib writes the raster ones through Pillow).
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".tif", ".tiff", ".webp")
# Suffixes that mean "a file" even though no figure can be written in that format.
OTHER_FILE_SUFFIXES = (".gif", ".bmp", ".ico", ".eps", ".ps", ".npy", ".npz", ".txt", ".json")
IMAGE_HINT = "image files (png, jpg, bmp, tif, webp)"
DEFAULT_COUNT = 8
LAYER_DEFAULTS = {
    "representative": "a few representative layers: the last of each resolution stage, at most 8",
    "last": "the last layer whose map is larger than 1x1",
    "all": "every layer it can draw",
}


@dataclass(frozen=True)
class Command:
    """One subcommand: its one-line help, how to add its arguments, and its handler."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""
    needs_tensorflow: bool = True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Errors are printed as one line on stderr (exit code 1; 2 for bad arguments); ``--debug``
    shows the full traceback instead. Warnings are one ``vizkit COMMAND: warning: ...`` line.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and argparse usage errors (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    command = COMMANDS[args.command]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.showwarning = _warning_printer(args.command)
        try:
            check_arguments(args)  # before TensorFlow: a typo answers at once
            if command.needs_tensorflow:
                import_tensorflow_quietly()
            return int(command.run(args) or 0)
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
        formatter_class=HelpFormatter,
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
            formatter_class=HelpFormatter,
        )
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
        )
        command.configure(p)
    return parser


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Adds ``(default: X)`` once, only for optional arguments with a real default.

    Help texts that already say what the default is (``default: ...``) are left alone, so no
    default is printed twice and none reads ``(default: None)``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or getattr(action, "required", False)
            or default in (None, False, True, argparse.SUPPRESS)
            or (isinstance(default, (list, tuple)) and not default)
            or action.nargs == 0  # flags (store_true / store_false / help)
        ):
            return text
        return f"{text} (default: %(default)s)"


# -- quiet start --------------------------------------------------------------------------------
def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its start-up log lines kept off the terminal.

    TensorFlow 2.21 prints absl lines while its C++ libraries load ("All log messages before
    absl::InitializeLog() ...", oneDNN and CUDA-stub notes): they are written to file
    descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL`` is read, so that variable alone cannot stop them.
    File descriptor 2 points at a temporary file during the import only; if the import fails
    what was captured is printed. ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it) silences
    the later lines (``cuInit`` errors on machines without a GPU). A user who sets
    ``TF_CPP_MIN_LOG_LEVEL`` to 0 sees everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("", "0"):
        import tensorflow

        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _warning_printer(command: str) -> Callable:
    def show(message, category, filename, lineno, file=None, line=None):
        stream = file or sys.stderr
        try:
            stream.write(f"{PROG} {command}: warning: {_one_line(message)}\n")
        except (OSError, ValueError):  # a closed stream: nothing sensible to do
            pass

    return show


# -- checks before TensorFlow ---------------------------------------------------------------------
def check_arguments(args: argparse.Namespace) -> None:
    """Cheap checks of files, names and the output path, run before TensorFlow is imported.

    Raises
    ------
    FileNotFoundError, ValueError
        One clear message naming the argument and the bad value.
    """
    models_given = getattr(args, "model", None)
    if models_given is not None:
        for path in models_given if isinstance(models_given, list) else [models_given]:
            _check_model_file(path)
    for path in getattr(args, "images", None) or []:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image file at {path!r} (--images)")
    dataset = getattr(args, "dataset", None)
    if dataset:
        from models.datasets import DATASETS

        if str(dataset).lower().replace("-", "_") not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; available: {', '.join(DATASETS)}")
    _check_one_source(args)
    if getattr(args, "preprocess", None):
        _preset(args.preprocess)
    if getattr(args, "method_spec", None) is not None:
        output_target(args.out)
        if getattr(args, "labels", None):
            _class_names(args.labels)


def _check_one_source(args: argparse.Namespace) -> None:
    """At most one of the image sources the command has (--images, --folder, --dataset)."""
    flags = [f for f in ("--images", "--folder", "--dataset") if hasattr(args, f[2:])]
    given = [f for f in flags if getattr(args, f[2:])]
    if len(given) > 1:
        choices = f"{', '.join(flags[:-1])} or {flags[-1]}"
        raise ValueError(f"pass one of {choices}, not {' and '.join(given)}")
    folder = getattr(args, "folder", None)
    if folder and not Path(folder).is_dir():
        raise NotADirectoryError(f"no folder at {folder!r} (--folder)")


def _check_model_file(path: str) -> None:
    file = Path(path).expanduser()
    if not file.exists():
        raise FileNotFoundError(f"no model file at {path!r}")
    if file.is_dir():
        raise ValueError(f"{path!r} is a folder; pass a saved model file (.keras or .h5)")


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


def _image_args(
    p: argparse.ArgumentParser, *, required: bool = True, count_help: str | None = None
) -> None:
    p.add_argument("--images", nargs="+", default=[], metavar="FILE", help=IMAGE_HINT)
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="take test images from a dataset instead (mnist, mnist5k, fashion_mnist, digits, ...)",
    )
    p.add_argument(
        "--count",
        type=_positive,
        metavar="N",
        help=count_help or f"number of dataset images (default: {DEFAULT_COUNT})",
    )
    p.set_defaults(images_required=required)


def _layer_args(p: argparse.ArgumentParser, what: str = "layer to draw", default: str = "") -> None:
    p.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help=f"{what} (name, nested path like backbone/conv1, or index); repeat for several; "
        f"'all' for every layer it can draw; default: {default or 'the method usual layers'}",
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
        help="a folder (created if missing), or one figure file (.png, .jpg, .pdf, .svg, .tif, "
        ".webp) when the run makes one figure. Files in a folder are named SOURCE_METHOD_LAYER.png "
        "(SOURCE: the image file's stem, DATASET-testNNN, or the model file's stem for "
        "filters, maximize and top-activating; e.g. astronaut_saliency-smoothgrad.png, "
        "digit_gradcam_c3_conv.png); a name two figures would share gets a short hash suffix",
    )
    p.add_argument("--save-array", action="store_true", help="also save the computed array as .npy")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _folder_arg(p: argparse.ArgumentParser) -> None:
    """``--folder DIR``: images streamed from a folder (with ``--engine ray``, each worker reads
    its own files)."""
    p.add_argument(
        "--folder",
        metavar="DIR",
        help="a folder of image files (searched recursively), read chunk by chunk, so any "
        "number of images fits in memory (with --engine ray each worker reads its own files)",
    )


def _preprocess_arg(p: argparse.ArgumentParser) -> None:
    """``--preprocess NAME``, checked by :func:`check_arguments` before the model loads."""
    p.add_argument(
        "--preprocess",
        metavar="NAME",
        help="input preprocessing the model was trained with, applied inside the graph to "
        "images in [0, 1]: none, scale255, tf ([-1, 1]), torch, caffe, or a keras.applications "
        "family such as resnet50 or mobilenet_v2 (default: none)",
    )


def _engine_args(p: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """``--engine``, ``--address`` and (unless the command has its own) ``--workers``."""
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where the pass over the images runs: this process, or Ray workers (pip install "
        "'vizkit[ray]'; the same results)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster for --engine ray: auto, HOST:PORT or ray://HOST:PORT (default: a "
        "local Ray on this machine)",
    )
    if workers:
        p.add_argument(
            "--workers",
            type=_positive,
            metavar="N",
            help="Ray workers for --engine ray (default: one per CPU of the cluster)",
        )


def _engine_options(args: argparse.Namespace) -> dict:
    """``engine``/``address``/``workers`` keywords from ``--engine``, ``--address``,
    ``--workers`` (the last two only apply to ``--engine ray``)."""
    if args.engine != "ray":
        given = [f for f, v in (("--address", args.address), ("--workers", args.workers)) if v]
        if given:
            raise ValueError(f"{' and '.join(given)} only apply to --engine ray")
        return {}
    return {"engine": "ray", "address": args.address, "workers": args.workers}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """``"256"`` -> (256, 256); ``"192x256"`` -> (192, 256) as (height, width)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values, default=0) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size like 256 or HEIGHTxWIDTH like 192x256, got {text!r}"
        )
    return (values[0], values[-1])


def parse_option(text: str) -> tuple[str, object]:
    """``"padding=same"`` -> ("padding", "same"); numbers, True/False and None are converted."""
    import ast

    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like padding=same, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    if isinstance(value, str) and value.lower() in ("true", "false", "none"):
        value = {"true": True, "false": False, "none": None}[value.lower()]
    return key.strip(), value


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
    if option.type == "bool":
        p.add_argument(option.cli_flag, dest=option.name, action="store_true", help=option.help)
        return
    kwargs: dict = {
        "dest": option.name,
        "type": _OPTION_PARSERS[option.type],
        "help": option.help,
        "default": option.default,  # shown once by HelpFormatter, unless the help says it
    }
    if option.choices:
        kwargs["choices"] = option.choices
    if option.type == "units":
        kwargs.update(nargs="+", action="extend", metavar="UNIT")
    p.add_argument(option.cli_flag, **kwargs)


def _runs_model(spec: MethodSpec) -> bool:
    """Every method but ``filters`` (which only reads weights) feeds images to the model."""
    return spec.renderer != "filters"


def _keeps_size(spec: MethodSpec) -> bool:
    """DeepDream works on images of any size (tiling fixed-size models), so it keeps theirs."""
    return spec.name == "deepdream"


def _configure_method(spec: MethodSpec) -> Callable[[argparse.ArgumentParser], None]:
    def configure(p: argparse.ArgumentParser) -> None:
        _model_args(p)
        if spec.needs_images:
            count_help = None
            if spec.name == "top_activating":
                count_help = "dataset images to rank (default: the whole test split)"
            _image_args(p, count_help=count_help)
            size_help = (
                "resize the images to this size, e.g. 256 or 192x256 (default: each image's own "
                "size)"
                if _keeps_size(spec)
                else "resize the images to this size, e.g. 224 or 192x256 (default: the "
                "model's input size; each image's own size for a model that takes any size)"
            )
            p.add_argument("--size", type=parse_size, metavar="SIZE", help=size_help)
        if spec.layers is not None:
            _layer_args(p, default=LAYER_DEFAULTS[spec.default_layers])
        if spec.target:
            _target_args(p)
        for option in spec.options:
            _add_option(p, option)
        if _runs_model(spec):
            _preprocess_arg(p)
        if spec.engines:
            _engine_args(p)
        if spec.target:
            p.add_argument(
                "--labels",
                metavar="FILE",
                help="class names for the printed classes: a text file (one name per line), "
                "a JSON list, or 'imagenet' (default: the dataset's names with --dataset)",
            )
        _out_args(p)
        p.set_defaults(method_spec=spec)

    return configure


@dataclass
class Batch:
    """Images read for a method run, with the names of their sources."""

    images: object  # (N, H, W, C) float32 in [0, 1]
    sources: list[str]  # one name per image: the file's stem or DATASET-testNNN
    keys: list[str]  # what tells images apart: the file's full path or the source name
    class_names: list[str] | None = None  # the dataset's class names, if any


@dataclass(frozen=True)
class OutputTarget:
    """Where figures go: a folder (names made per figure) or exactly one file."""

    folder: Path
    file: Path | None = None

    def path(self, name: str, suffix: str = ".png") -> Path:
        return self.file if self.file is not None else self.folder / f"{name}{suffix}"


def output_target(out: str) -> OutputTarget:
    """Read ``--out``: an existing folder, a figure file (by its suffix) or a new folder.

    Raises
    ------
    ValueError
        For a file suffix no figure can be written in, or an existing file without a figure
        suffix (it would be taken for a folder).
    """
    path = Path(out).expanduser()
    if path.is_dir() or str(out).endswith(("/", os.sep)):
        return OutputTarget(path)
    suffix = path.suffix.lower()
    if suffix in FIGURE_SUFFIXES:
        return OutputTarget(path.parent, path)
    if suffix in OTHER_FILE_SUFFIXES:
        raise ValueError(
            f"--out {out!r}: cannot write a figure as {suffix}; name a "
            f"{', '.join(FIGURE_SUFFIXES)} file or a folder"
        )
    if path.exists():
        raise ValueError(
            f"--out {out!r} is an existing file; name a figure file "
            f"({', '.join(FIGURE_SUFFIXES)}) or a folder"
        )
    return OutputTarget(path)


def figure_names(
    identities: Sequence[tuple[str, ...]], keys: Sequence[tuple[str, ...]] | None = None
) -> list[str]:
    """File stems for figures named by tuples of parts, joined with ``_``.

    Each part is made file-safe (``/`` of nested layer paths becomes ``.``; other characters
    outside letters, digits, ``.``, ``-`` and ``_`` become ``_``). ``keys`` tell figures apart
    (default: the identities; e.g. the full paths of two images that share a stem). Only when
    different figures would share a name (also when the names differ only in case, as on the
    macOS and Windows file systems) do they get a ``-`` and 6 hex digits of a hash of their key.
    """
    import hashlib

    keys = list(identities) if keys is None else list(keys)
    stems = ["_".join(_slug(part) for part in identity if part) for identity in identities]
    seen: dict[str, set[tuple[str, ...]]] = {}
    for stem, key in zip(stems, keys, strict=True):
        seen.setdefault(stem.lower(), set()).add(tuple(key))
    out = []
    for stem, key in zip(stems, keys, strict=True):
        if len(seen[stem.lower()]) > 1:
            digest = hashlib.sha1("\0".join(key).encode("utf-8", "surrogatepass"))
            stem = f"{stem}-{digest.hexdigest()[:6]}"
        out.append(stem)
    return out


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text.replace("/", ".")).strip("._-")
    return slug[:80] or "x"


def method_tag(spec: MethodSpec, options: dict) -> str:
    """The method in a file name, with its variant: ``saliency-smoothgrad``, ``gradcam-plusplus``."""
    tag = spec.command
    if spec.name == "saliency":
        tag += f"-{options.get('method') or 'vanilla'}"
    if options.get("plus_plus"):
        tag += "-plusplus"
    return tag


def _run_method(args: argparse.Namespace) -> int:
    import numpy as np

    from .core.files import atomic_write
    from .plot.renderers import to_bytes
    from .report.export import render_method

    spec: MethodSpec = args.method_spec
    target = output_target(args.out)
    model = _load_model(args.model, unsafe=args.unsafe)
    batch = _read_batch(args, model, spec) if spec.needs_images else None
    images = batch.images if batch is not None else np.zeros((1, *_input_hw(model)), np.float32)
    layers = _choose_layers(spec, model, getattr(args, "layer", None), args.command)
    options = _method_options(spec, args)
    results = render_method(
        model,
        images,
        spec.name,
        layers=layers,
        targets=getattr(args, "target", None),
        options=options,
        progress=None,
        check_size=not _keeps_size(spec),
        exact_layers=isinstance(layers, list),
    )
    if not results:
        raise ValueError(f"{spec.command} drew no figure for layers {layers}")
    if target.file is not None and len(results) > 1:
        raise ValueError(
            f"--out {args.out!r} names one file but this run makes {len(results)} figures "
            f"({_count_text(results)}); pass a folder instead"
        )
    tag = method_tag(spec, options)
    model_stem = Path(args.model).stem
    names = figure_names(
        [
            (model_stem if image is None else batch.sources[image], tag, layer or "")
            for layer, image, _, _ in results
        ],
        keys=[
            (args.model if image is None else batch.keys[image], tag, layer or "")
            for layer, image, _, _ in results
        ],
    )
    paths = [target.path(name) for name in names]
    arrays = [p.with_suffix(".npy") for p in paths] if args.save_array else []
    for path in [*paths, *arrays]:
        if path.exists() and not args.overwrite:
            raise FileExistsError(f"{str(path)!r} already exists; pass --overwrite to replace it")
    captions = _class_captions(spec, args, model, batch, options, results)
    for (_, _, array, fig), path, caption in zip(results, paths, captions, strict=True):
        atomic_write(path, to_bytes(fig, path.suffix[1:].lower(), 100))
        print(f"{path}\t{caption}" if caption else path)
        if args.save_array:
            atomic_write(path.with_suffix(".npy"), _npy_bytes(array))
            print(path.with_suffix(".npy"))
    return 0


def _count_text(results) -> str:
    layers = len({layer for layer, _, _, _ in results})
    images = len({image for _, image, _, _ in results})
    return f"{layers} layer(s) x {images} image(s)"


def _method_options(spec: MethodSpec, args: argparse.Namespace) -> dict:
    options = {}
    for option in spec.options:
        value = getattr(args, option.name)
        if value in (None, False):
            continue
        if option.type == "units":  # --units 0 1 4-6: one list of indices
            value = list(dict.fromkeys(u for part in value for u in part))
        options[option.name] = value
    if getattr(args, "units", None) and getattr(args, "first", None):
        raise ValueError("pass either --units (which units) or --first N (how many), not both")
    preset = getattr(args, "preprocess", None)
    if preset and _preset(preset) is not None:
        options["preprocess"] = _preset(preset)
    if spec.engines:
        options.update(_engine_options(args))
    return options


def _choose_layers(spec: MethodSpec, model, requested: list[str] | None, command: str):
    """The layers to draw: checked ``--layer`` values, ``"all"``, or the defaults (said on stderr)."""
    from .core.layers import output_rank, resolve_layer
    from .report.compute import default_layers, suitable_layers, suits, why_not

    if spec.layers is None:
        return None
    if requested and "all" in requested:
        if len(requested) > 1:
            raise ValueError("--layer all means every layer; do not combine it with other layers")
        paths = suitable_layers(spec, model)
        if not paths:
            raise ValueError(f"model {model.name!r} has no layer that suits {spec.command}")
        print(f"{PROG} {command}: all {len(paths)} layers that suit it", file=sys.stderr)
        return "all"
    if not requested:
        paths = default_layers(spec, model)
        if not paths:
            raise ValueError(f"model {model.name!r} has no layer that suits {spec.command}")
        what = LAYER_DEFAULTS[spec.default_layers]
        print(
            f"{PROG} {command}: {_plural(len(paths), 'layer')} ({what}; --layer NAME or "
            f"--layer all for others): {', '.join(paths)}",
            file=sys.stderr,
        )
        return paths
    chosen = []
    for name in requested:
        spec_value = int(name) if re.fullmatch(r"-?\d+", name) else name
        path, layer = resolve_layer(model, spec_value)
        # Grad-CAM's defaults skip 1x1 maps; a 1x1 layer named on purpose runs with a warning.
        ok = suits(spec, layer) or (spec.layers == "gradcam" and output_rank(layer) == 4)
        if not ok:
            fits = suitable_layers(spec, model)
            listing = ", ".join(fits[-8:])
            more = f" (the last 8 of {len(fits)})" if len(fits) > 8 else ""
            raise ValueError(
                f"{why_not(spec, path, layer)}; layers that suit it{more}: {listing or 'none'}"
            )
        chosen.append(path)
    return list(dict.fromkeys(chosen))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _class_captions(spec, args, model, batch, options, results) -> list[str]:
    """``"predicted class 7 (seven)"`` per figure of a method that explains a class."""
    if not spec.target or batch is None:
        return [""] * len(results)
    names = _class_names(args.labels) if getattr(args, "labels", None) else batch.class_names
    if args.target is not None:
        classes, kind = [args.target] * len(batch.images), "class"
    else:
        from .core.graph import Tap
        from .core.targets import resolve_targets

        tap = Tap(logits=True, preprocess=options.get("preprocess"))
        classes = resolve_targets(model, batch.images, None, tap=tap, size=32).tolist()
        kind = "predicted class"
    out = []
    for _, image, _, _ in results:
        c = int(classes[image])
        name = names[c] if names is not None and 0 <= c < len(names) else str(c)
        label = f" ({name})" if name != str(c) else ""  # MNIST's names are the digits
        out.append(f"{kind} {c}{label}")
    return out


def _preset(name: str):
    """The :mod:`vizkit.preprocessing` preset ``name`` (None for ``none``)."""
    try:
        from .preprocessing import get_preset
    except ImportError:  # pragma: no cover - the module lands with issue #16
        raise ValueError(
            "--preprocess needs vizkit.preprocessing, which is not installed"
        ) from None
    preset = get_preset(name)
    return None if getattr(preset, "name", name) == "none" else preset


def _class_names(spec: str) -> list[str]:
    try:
        from .preprocessing import load_labels
    except ImportError:  # pragma: no cover - the module lands with issue #16
        raise ValueError("--labels needs vizkit.preprocessing, which is not installed") from None
    return load_labels(spec)


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
    from models.names import zoo_names

    names = zoo_names(args.pattern)  # read from the zoo's source: no TensorFlow to import
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
    p.add_argument("--optimizer", default="adam", help="Keras optimizer name")
    p.add_argument(
        "--learning-rate", type=float, help="peak learning rate (default: the optimizer's own)"
    )
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
        help="random shifts and/or left-right flips of the training images (default: none)",
    )
    p.add_argument("--label-smoothing", type=float, default=0.0, help="in [0, 1)")
    p.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the architecture's builder, e.g. --option padding=same or "
        "--option dropout=0.25; repeat for several (see the builder's docstring)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing model files")
    p.add_argument(
        "--strategy",
        choices=("mirrored", "multiworker"),
        help="train under tf.distribute: 'mirrored' = every local GPU (or logical CPU device); "
        "'multiworker' = the hosts in the TF_CONFIG environment variable (run the same command "
        "on each; only the chief writes --out). --batch-size is then the global batch",
    )
    p.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="back up weights and epoch here after each epoch; rerunning the same command resumes "
        "an interrupted job (with --strategy and no --backup-dir: PATH.backup)",
    )


def _run_train(args: argparse.Namespace) -> int:
    import models
    from models.distribute import resolve_strategy

    # Before any TensorFlow op (building the model runs some): a multi-worker strategy sets up
    # collective ops when it is created.
    strategy = resolve_strategy(args.strategy)
    data = models.load_dataset(args.dataset)
    try:
        model = models.create_model(
            args.name,
            input_shape=data.input_shape,
            num_classes=data.num_classes,
            **dict(args.option),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(_command_line_advice(str(exc))) from exc
    result = models.train(
        model,
        data,
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
        strategy=strategy,
        backup_dir=args.backup_dir,
    )
    print(f"test accuracy: {result.test_accuracy:.4f}")
    if result.path is not None:
        print(f"model: {result.path}")
        print(f"sidecar: {Path(result.path).with_suffix('.json')}")
    return 0


def _command_line_advice(message: str) -> str:
    """Builder advice such as ``use padding='same'`` rewritten as ``use --option padding=same``."""
    message = re.sub(r"\buse (\w+)=(['\"]?)([\w.+-]+)\2", r"use --option \1=\3", message)
    if "unexpected keyword argument" in message:
        message += "; --option KEY=VALUE takes the builder's keyword options (see its docstring)"
    return message


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
    _folder_arg(p)
    p.add_argument("--formats", default="png", help="comma-separated: png, pdf, svg")
    p.add_argument(
        "--style",
        choices=("raster", "matplotlib"),
        default="raster",
        help="raster: fast NumPy/OpenCV pictures, text in the captions (default); matplotlib: "
        "titled figures with colour bars (slower; PDF and SVG are always matplotlib)",
    )
    _preprocess_arg(p)
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="class names for the captions: a text file (one name per line), a JSON list, or "
        "'imagenet' (default: the dataset's names with --dataset)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace files from other exports")
    p.add_argument("--no-resume", action="store_true", help="do not skip files already written")
    p.add_argument("--no-diagnose", action="store_true", help="leave out the diagnosis table")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="threads drawing figures (default: up to 4); with --engine ray, Ray workers, each "
        "computing, drawing and writing its chunks of images (then one per CPU unless given)",
    )
    _engine_args(p, workers=False)
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="add the 'Which map to trust' section: faithfulness metrics and the randomisation "
        "sanity check for every explanation method, on the first 64 images",
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
    if args.folder:
        images = args.folder  # streamed: files are read a chunk at a time
    elif args.dataset:
        import models

        data = models.load_dataset(args.dataset)
        count = args.count or DEFAULT_COUNT
        # One (x, y) batch: the true labels go into the captions.
        images = [(data.x_test[:count], data.y_test[:count])]
        names = getattr(data, "class_names", None)
        labels = labels if labels is not None else (list(names) if names else None)
    elif args.images:
        images = list(args.images)
    else:
        raise ValueError("no images: pass --images FILE ..., --folder DIR or --dataset NAME")
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
        engine=args.engine,
        address=args.address,
        evaluate=args.evaluate,
    )
    print(index)
    return 0


def _configure_diagnose(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    _image_args(p)
    _folder_arg(p)
    _engine_args(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def _run_diagnose(args: argparse.Namespace) -> int:
    import json

    import vizkit

    engine = _engine_options(args)
    model = _load_model(args.model, unsafe=args.unsafe)
    images = args.folder or _read_images(args, model, required=True)
    result = vizkit.diagnose(model, images, **engine)
    if args.json:
        from .core.jsonutil import jsonable

        print(json.dumps(result.to_dict(), indent=1, default=jsonable))
    else:
        print(result.summary())
    return 0


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    from .metrics.names import DEFAULT_METHODS, DEFAULT_METRICS, METRICS
    from .registry import EXPLANATIONS

    _model_args(p)
    _image_args(p)
    _target_args(p)
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated explanation methods; known: {', '.join(EXPLANATIONS)}",
    )
    p.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated metrics; known: {', '.join(METRICS)}",
    )
    p.add_argument("--steps", type=_positive, default=10, help="deletion / insertion steps")
    p.add_argument(
        "--baseline",
        default="0",
        help="what removed pixels become: a number or 'blur' (a blurred copy of the image)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    _preprocess_arg(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .metrics.report_card import evaluate
    from .metrics.report_files import write_trust_report

    model = _load_model(args.model, unsafe=args.unsafe)
    images = _read_images(args, model, required=True)
    if args.baseline == "blur":
        baseline = "blur"
    else:
        try:
            baseline = float(args.baseline)
        except ValueError:
            raise ValueError(
                f"--baseline must be a number or 'blur', got {args.baseline!r}"
            ) from None
    table = evaluate(
        model,
        images,
        targets=args.target,
        methods=_split(args.methods),
        metrics=_split(args.metrics),
        steps=args.steps,
        baseline=baseline,
        seed=args.seed,
        preprocess=_preset(args.preprocess) if args.preprocess else None,
        progress=not args.quiet,
    )
    index = write_trust_report(table, args.out, overwrite=args.overwrite)
    print(table.to_markdown())
    print(index)
    return 0


def _configure_atlas(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    _image_args(p, count_help="dataset test images to read (default: the whole test split)")
    _folder_arg(p)
    p.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="a layer with a 4-D output (name, nested path like backbone/conv1, or index); "
        "repeat for several; default: every convolution layer with a 4-D output",
    )
    p.add_argument("-k", type=_positive, default=9, help="dataset images shown per channel")
    _engine_args(p)
    p.add_argument(
        "--batch-size", type=_positive, metavar="N", help="images per chunk (default: 32)"
    )
    p.add_argument(
        "--steps", type=_positive, metavar="N", help="activation-maximisation steps (default: 256)"
    )
    _preprocess_arg(p)
    p.add_argument(
        "--page-size", type=_positive, metavar="N", help="channels per layer page (default: 128)"
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the site (index.html, layers/)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files already in DIR (an earlier atlas's); other files are left alone",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_atlas(args: argparse.Namespace) -> int:
    from .microscope import atlas

    engine = _engine_options(args)
    model = _load_model(args.model, unsafe=args.unsafe)
    if args.folder:
        data = args.folder
    elif args.dataset:
        import models

        data = models.load_dataset(args.dataset).x_test[: args.count]
    elif args.images:
        data = list(args.images)
    else:
        raise ValueError(
            "no images: pass --dataset NAME [--count N], --images FILE ... or --folder DIR"
        )
    layers = None
    if args.layer:
        layers = [int(n) if re.fullmatch(r"-?\d+", n) else n for n in args.layer]
    index = atlas(
        model,
        data,
        args.out,
        layers=layers,
        k=args.k,
        **engine,
        batch_size=args.batch_size,
        preprocess=_preset(args.preprocess) if args.preprocess else None,
        maximize_steps=args.steps,
        page_size=args.page_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(index)
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
    """Images from ``--images`` files or ``--dataset`` (float NHWC in [0, 1]), or None."""
    if not (getattr(args, "images", None) or getattr(args, "dataset", None)):
        if required:
            raise ValueError("no images: pass --images FILE ... or --dataset NAME [--count N]")
        return None
    return _read_batch(args, model).images


def _read_batch(args: argparse.Namespace, model, spec: MethodSpec | None = None) -> Batch:
    """The images of ``--images`` or ``--dataset`` with their source names.

    Files are resized to ``--size``, else to the model's input size (not for methods that keep
    the image size, nor for a model that takes any size). ``--dataset`` takes the first
    ``--count`` test images (default 8; the whole test split for top-activating).
    """
    import numpy as np

    from .core.images import model_input_shape
    from .core.sources import index_id

    size = getattr(args, "size", None)
    if args.dataset:
        import models

        data = models.load_dataset(args.dataset)
        count = args.count
        if count is None:
            whole = spec is not None and spec.name == "top_activating"
            count = None if whole else DEFAULT_COUNT
        x = data.x_test[:count]
        if size is not None and tuple(x.shape[1:3]) != tuple(size):
            import cv2

            x = np.stack([_as_hwc(cv2.resize(im, size[::-1], cv2.INTER_AREA)) for im in x])
        sources = [f"{data.name}-test{index_id(i, len(x))}" for i in range(len(x))]
        return Batch(x, sources, sources, list(data.class_names) or None)
    if not args.images:
        raise ValueError("no images: pass --images FILE ... or --dataset NAME [--count N]")
    h, w, c = model_input_shape(model)
    keep = spec is not None and _keeps_size(spec)
    if size is None and not keep and h is not None and w is not None:
        size = (h, w)
    images = read_image_files(args.images, size=size, channels=c)
    keys = [str(Path(p).expanduser().resolve()) for p in args.images]
    return Batch(images, [Path(p).stem for p in args.images], keys)


def _as_hwc(image):
    return image if image.ndim == 3 else image[..., None]


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
    shapes = {b.shape[:2] for b in batch}
    if len(shapes) > 1:
        raise ValueError(
            f"the images have different sizes {sorted(shapes)}; pass --size HEIGHTxWIDTH to "
            "resize them to one size"
        )
    return np.stack(batch)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _one_line(exc: BaseException | Warning | str) -> str:
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


def _configure_style_transfer(p: argparse.ArgumentParser) -> None:

    _model_args(p)
    p.add_argument("--content", required=True, metavar="FILE", help="the content image file")
    p.add_argument("--style", required=True, metavar="FILE", help="the style image file")
    p.add_argument(
        "--content-layer",
        action="append",
        metavar="NAME",
        help="content layer (repeat for several; default: the last conv of the second-to-last "
        "resolution stage)",
    )
    p.add_argument(
        "--style-layer",
        action="append",
        metavar="NAME",
        help="style layer (repeat for several; default: the first conv of each stage, up to 5)",
    )
    p.add_argument("--steps", type=_positive, default=200, help="Adam steps")
    p.add_argument("--size", type=_positive, help="output side in pixels (default: content size)")
    p.add_argument("--style-weight", type=float, default=10.0, help="weight of the style loss")
    p.add_argument("--content-weight", type=float, default=1.0, help="weight of the content loss")
    p.add_argument("--tv-weight", type=float, default=0.05, help="total-variation weight")
    _preprocess_arg(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the optimisation")
    p.add_argument("--out", required=True, metavar="FILE", help="output image (.png or .jpg)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _run_style_transfer(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from .core.files import atomic_write
    from .methods.style_transfer import style_transfer

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"--out must end in .png or .jpg, got {args.out!r}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{str(out)!r} already exists; pass --overwrite to replace it")
    model = _load_model(args.model, unsafe=args.unsafe)
    channels = _input_hw(model)[2]
    content = read_image_files([args.content], channels=channels)[0]
    style = read_image_files([args.style], channels=channels)[0]
    image = style_transfer(
        model,
        content,
        style,
        content_layers=args.content_layer,
        style_layers=args.style_layer,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        steps=args.steps,
        size=args.size,
        seed=args.seed,
        preprocess=args.preprocess,
    )
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if pixels.shape[-1] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(out.suffix.lower(), pixels)
    if not ok:
        raise ValueError(f"could not encode the image as {out.suffix}")
    atomic_write(out, encoded.tobytes())
    print(out)
    return 0


# Subcommands in the order --help lists them. More are added as entries, e.g.
# COMMANDS["demo"] = Command("train LeNet-5 on MNIST and export every figure", configure, run).
COMMANDS: dict[str, Command] = {
    "models": Command(
        "list the registered architectures",
        _configure_models,
        _run_models,
        needs_tensorflow=False,
    ),
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
    "evaluate": Command(
        "which map to trust: faithfulness metrics and sanity checks for every explanation method",
        _configure_evaluate,
        _run_evaluate,
        description="Scores saliency, Grad-CAM and occlusion maps of a model on deletion, "
        "insertion, muFidelity and the cascading randomisation sanity check (Adebayo et al., "
        "2018), and writes DIR/trust.md, DIR/trust.json, the curve and randomisation figures and "
        "DIR/index.html.",
    ),
}
COMMANDS["atlas"] = Command(
    "every channel of a model's conv layers as a static site (maximisation, top images, flags)",
    _configure_atlas,
    _run_atlas,
    description="Reads the images once (on this machine or on Ray) and writes DIR/index.html, a "
    "landing page of layers with their dead-channel counts, and one page per layer with a "
    "card per channel: its activation-maximisation image, the receptive-field crops of the "
    "-k dataset images that excite it most (scores and image ids), its dead / constant / "
    "input-like flags, its sparsity and a histogram of its activations.",
)
COMMANDS["style-transfer"] = Command(
    "paint a content image in the style of another with a model's features (Gatys et al.)",
    _configure_style_transfer,
    _run_style_transfer,
)
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
