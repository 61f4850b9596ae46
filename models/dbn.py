"""Deep belief networks: greedily stacked RBMs, optionally fine-tuned as a Keras classifier.

Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural Computation 18
(2006). Training is greedy and layer-wise: train the first RBM on the data, freeze it, feed its
hidden probabilities to the next RBM as data, and repeat.

Two ways to use labels are provided:

* **softmax head** (:meth:`DBN.fine_tune`): the stack becomes Dense sigmoid layers initialised
  from the RBM weights and hidden biases, a softmax layer is added on top, and the whole network
  is trained by backpropagation (Hinton & Salakhutdinov, Science 2006).
* **label units on the top RBM** (``pretrain(x, y=labels)``), as in the 2006 paper and the seed
  tutorial: the top RBM's visible layer holds the penultimate hidden units *plus* one unit per
  class (e.g. 500 + 10 = 510), the true class switched on and the others off. :meth:`DBN.predict`
  then classifies by the free energy of the top RBM with each label clamped in turn, choosing the
  label of lowest free energy.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from .rbm import RBM, check_data


class DBN:
    """A stack of RBMs with sizes ``layer_sizes = [n_visible, n_hidden1, n_hidden2, ...]``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Input size followed by the hidden layer sizes (at least two numbers).
    visible : {"bernoulli", "gaussian"}
        Visible type of the first RBM; upper RBMs see probabilities and are Bernoulli.
    seed : int
        RBM ``i`` is seeded with ``seed + i``; the Keras head with ``seed``.
    **rbm_kwargs
        Passed to every :class:`~models.rbm.RBM` (``k``, ``persistent``, ``learning_rate``,
        ``momentum``, ``weight_decay``, ``init``, ``error``).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        visible: str = "bernoulli",
        seed: int = 0,
        **rbm_kwargs,
    ) -> None:
        sizes = list(layer_sizes) if isinstance(layer_sizes, (list, tuple)) else None
        if not sizes or len(sizes) < 2 or not all(_is_positive_int(s) for s in sizes):
            raise ValueError(
                f"layer_sizes must be a list of at least two positive integers "
                f"(input size, then hidden sizes), got {layer_sizes!r}"
            )
        self.layer_sizes = [int(s) for s in sizes]
        self.visible = visible
        self.seed = int(seed)
        self.rbm_kwargs = dict(rbm_kwargs)
        self.num_classes: int | None = None  # set when labels join the top RBM
        self.input_shape: tuple[int, ...] = (self.layer_sizes[0],)
        self.rbms = [self._make_rbm(i, self.layer_sizes[i]) for i in range(len(sizes) - 1)]

    def pretrain(
        self,
        x: np.ndarray,
        *,
        epochs: int,
        batch_size: int = 10,
        y: np.ndarray | None = None,
        num_classes: int | None = None,
        verbose: bool = True,
    ) -> list[np.ndarray]:
        """Greedy layer-wise training; returns the per-epoch reconstruction errors of each RBM.

        Parameters
        ----------
        x : ndarray, shape (N, n_visible) or images (N, H, W[, C])
            Training data (see :meth:`RBM.fit`).
        epochs, batch_size : int
            Used for every layer.
        y : ndarray of int, shape (N,), optional
            Class labels: when given, the top RBM is trained on ``[h, one_hot(y)]`` (label units
            on the top RBM), which enables :meth:`predict`.
        num_classes : int, optional
            Number of classes (default ``max(y) + 1``).
        """
        data = self._check_x(x)
        if y is not None:
            labels = _labels(y, len(data), num_classes)
            self.num_classes = int(num_classes or labels.max() + 1)
            top = len(self.rbms) - 1
            self.rbms[top] = self._make_rbm(top, self.layer_sizes[top] + self.num_classes)
        errors = []
        for i, rbm in enumerate(self.rbms):
            if i == len(self.rbms) - 1 and y is not None:
                data = np.concatenate([data, _one_hot(labels, self.num_classes)], axis=1)
            errors.append(rbm.fit(data, epochs=epochs, batch_size=batch_size, verbose=verbose))
            if i < len(self.rbms) - 1:
                data = rbm.transform(data)
        return errors

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Hidden probabilities of the top layer, shape (N, layer_sizes[-1]) (no label units)."""
        data = self._check_x(x)
        for rbm in self.rbms[:-1]:
            data = rbm.transform(data)
        if self.num_classes is not None:
            # without a label the top layer sees label units at their prior, 1/num_classes
            prior = np.full((len(data), self.num_classes), 1.0 / self.num_classes, np.float32)
            data = np.concatenate([data, prior], axis=1)
        return self.rbms[-1].transform(data)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class of lowest top-RBM free energy for each row (needs ``pretrain(x, y=...)``)."""
        if self.num_classes is None:
            raise ValueError("predict needs label units: call pretrain(x, y=labels) first")
        data = self._check_x(x)
        for rbm in self.rbms[:-1]:
            data = rbm.transform(data)
        energies = np.stack(
            [
                self.rbms[-1].free_energy(
                    np.concatenate([data, np.broadcast_to(row, (len(data), len(row)))], axis=1)
                )
                for row in np.eye(self.num_classes, dtype=np.float32)
            ],
            axis=1,
        )
        return energies.argmin(axis=1)

    def to_keras(self, num_classes: int) -> keras.Model:
        """A Keras classifier: Dense sigmoid layers ``rbm1..rbmL`` from the RBMs + softmax head.

        Image inputs seen by :meth:`pretrain` give an ``Input`` of that shape and a ``Flatten``.
        With label units on the top RBM only its first ``layer_sizes[-2]`` visible rows are used.
        """
        if not _is_positive_int(num_classes) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        inputs = keras.Input(self.input_shape, name="input")
        h = keras.layers.Flatten(name="flatten")(inputs) if len(self.input_shape) > 1 else inputs
        for i, (rbm, size) in enumerate(zip(self.rbms, self.layer_sizes[1:], strict=True)):
            dense = keras.layers.Dense(size, activation="sigmoid", name=f"rbm{i + 1}")
            h = dense(h)
            n_in = self.layer_sizes[i]
            dense.set_weights([rbm.weights[:n_in], rbm.hidden_bias])
        init = keras.initializers.GlorotUniform(seed=self.seed)
        outputs = keras.layers.Dense(
            num_classes, activation="softmax", kernel_initializer=init, name="predictions"
        )(h)
        return keras.Model(inputs, outputs, name="dbn")

    def fine_tune(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        batch_size: int = 32,
        num_classes: int | None = None,
        x_test: np.ndarray | None = None,
        y_test: np.ndarray | None = None,
        learning_rate: float = 1e-3,
        verbose: bool = True,
    ) -> keras.Model:
        """Build :meth:`to_keras` and train it with Adam on sparse categorical cross-entropy.

        ``y`` holds integer labels (or one-hot rows). ``x_test``/``y_test`` are used as
        validation data. The returned model is compiled with an ``accuracy`` metric and keeps
        its ``history``.
        """
        data = self._check_x(x).reshape((-1, *self.input_shape))
        labels = _labels(y, len(data), num_classes)
        classes = int(num_classes or labels.max() + 1)
        model = self.to_keras(classes)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        validation = None
        if x_test is not None and y_test is not None:
            x_val = self._check_x(x_test).reshape((-1, *self.input_shape))
            validation = (x_val, _labels(y_test, len(x_val), classes))
        model.fit(
            data,
            labels,
            epochs=int(epochs),
            batch_size=int(batch_size),
            validation_data=validation,
            verbose=1 if verbose else 0,
        )
        return model

    def __repr__(self) -> str:
        return f"DBN(layer_sizes={self.layer_sizes}, visible={self.visible!r})"

    def _make_rbm(self, i: int, n_visible: int) -> RBM:
        visible = self.visible if i == 0 else "bernoulli"
        return RBM(
            n_visible,
            self.layer_sizes[i + 1],
            visible=visible,
            seed=self.seed + i,
            **self.rbm_kwargs,
        )

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x)
        if arr.ndim > 2:
            self.input_shape = tuple(int(d) for d in arr.shape[1:])
        return check_data(arr, self.layer_sizes[0], bernoulli=self.visible == "bernoulli", name="x")


def _labels(y, n: int, num_classes: int | None) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2:  # one-hot rows
        arr = arr.argmax(axis=1)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"y must hold one label per row of x ({n}), got shape {np.shape(y)}")
    if not np.issubdtype(arr.dtype, np.integer) and not np.all(arr == np.round(arr)):
        raise ValueError(f"y must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    limit = num_classes if num_classes is not None else arr.max() + 1
    if arr.min() < 0 or arr.max() >= limit:
        raise ValueError(
            f"labels must lie in [0, {limit - 1}], got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def _is_positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0
