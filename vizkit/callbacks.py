"""A Keras callback that exports visualisations while a model trains."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from .core.checks import positive_int
from .registry import check_methods


class VisualizationCallback(keras.callbacks.Callback):
    """Every ``every`` epochs, write figures of the model in training to ``out_dir/epoch_XXX/``.

    The figures go through :func:`vizkit.export` (same layout, ``manifest.json`` and
    ``index.html`` per epoch), so watching a filter or a Grad-CAM map sharpen epoch by epoch is
    a matter of opening the folders side by side. With ``tensorboard_dir`` the same figures are
    also logged as TensorBoard images (``tf.summary.image``, step = epoch number).

    Parameters
    ----------
    images : array_like, shape (N, H, W[, C])
        A few fixed images to draw (uint8 or float, as for :func:`vizkit.export`).
    out_dir : str or Path
        Parent folder of the ``epoch_XXX`` folders (epochs counted from 1).
    every : int
        Export after every ``every``-th epoch.
    methods : sequence of str
        Methods of :func:`vizkit.export`.
    layers : layer spec, list or None
        Layers for the per-layer methods (default: each method's own).
    tensorboard_dir : str, Path or None
        Where to write TensorBoard image summaries.
    **export_options
        Passed on to :func:`vizkit.export` (``targets``, ``method_options``, ``formats``, ...).
    """

    def __init__(
        self,
        images,
        out_dir: str | Path,
        *,
        every: int = 1,
        methods: Sequence[str] = ("feature_maps", "gradcam"),
        layers=None,
        tensorboard_dir: str | Path | None = None,
        **export_options,
    ) -> None:
        super().__init__()
        self.methods = check_methods(methods)
        self.images = np.asarray(images)
        self.out_dir = Path(out_dir)
        self.every = positive_int(every, "every")
        self.layers = layers
        self.tensorboard_dir = None if tensorboard_dir is None else Path(tensorboard_dir)
        self.export_options = {"progress": False, "diagnose": False, **export_options}
        self.written: list[Path] = []  # index.html of each exported epoch
        self._writer = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        number = epoch + 1
        if number % self.every:
            return
        from .report import export

        index = export(
            self.model,
            self.images,
            self.out_dir / f"epoch_{number:03d}",
            methods=self.methods,
            layers=self.layers,
            **self.export_options,
        )
        self.written.append(index)
        if self.tensorboard_dir is not None:
            self._log_images(index.parent, number)

    def on_train_end(self, logs=None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _log_images(self, folder: Path, step: int) -> None:
        import cv2
        import tensorflow as tf

        from .report.manifest import Manifest

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        with self._writer.as_default():
            for entry in Manifest.load(folder).entries.values():
                if entry.format != "png":
                    continue
                image = cv2.imread(str(folder / entry.path), cv2.IMREAD_COLOR)
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                where = "model" if entry.layer is None else entry.layer
                name = f"{entry.method}/{where}" + (
                    "" if entry.image is None else f"/image_{entry.image}"
                )
                _image_summary(_tag(name), image, step)
        self._writer.flush()


def _tag(name: str) -> str:
    # TensorBoard tags become TF name scopes, which refuse characters such as "<" or spaces.
    return re.sub(r"[^A-Za-z0-9_.\\/-]+", "_", name)


def _image_summary(tag: str, image: np.ndarray, step: int) -> None:
    """``tf.summary.image`` of one ``(H, W, 3)`` uint8 image.

    ``tf.summary.image`` needs the ``tensorboard`` package; without it the same record
    (PNG bytes tagged for the "images" plugin, as TensorBoard writes it) is written directly.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    if importlib.util.find_spec("tensorboard") is not None:
        tf.summary.image(tag, image[None], step=step)
        return

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images")
    )
    height, width = image.shape[:2]
    tensor = tf.stack(
        [tf.as_string(width), tf.as_string(height), tf.io.encode_png(tf.constant(image))]
    )
    tf.summary.write(tag, tensor, step=step, metadata=metadata)
