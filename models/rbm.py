"""Restricted Boltzmann machines trained by contrastive divergence, compiled with TensorFlow.

An RBM is a bipartite undirected model with energy

* Bernoulli visibles: ``E(v, h) = -b·v - c·h - v·W·h``
* unit-variance Gaussian visibles: ``E(v, h) = ||v - b||² / 2 - c·h - v·W·h``

and binary hidden units. Training follows Hinton, "A Practical Guide to Training Restricted
Boltzmann Machines" (UTML TR 2010-003): CD-k (Hinton 2002) or persistent CD (Tieleman 2008),
classical momentum ``Δ ← m·Δ + ε·(∇ - λ·W)`` and L2 weight decay ``λ``. Hidden states are sampled,
the reconstruction of a CD chain uses visible probabilities (means), and the statistics use hidden
probabilities, which lowers the variance of the update. Each training epoch (shuffling aside) is
one compiled ``tf.function`` whose loop over minibatches runs inside the graph.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from vizkit.core.checks import choice, number_in, positive_int
from vizkit.core.files import atomic_path

VISIBLE_TYPES = ("bernoulli", "gaussian")
ERROR_TYPES = ("mse", "cosine")
INIT_TYPES = ("xavier", "normal")
_CHUNK = 4096  # rows per compiled call in transform/reconstruct: bounded memory
_FORMAT = "vizkit-rbm/1"


class RBM:
    """A restricted Boltzmann machine with binary hidden units.

    Parameters
    ----------
    n_visible, n_hidden : int
        Numbers of visible and hidden units.
    visible : {"bernoulli", "gaussian"}
        Bernoulli visibles expect data in [0, 1] (probabilities are fine). Gaussian visibles have
        unit variance, so standardise each input feature (zero mean, unit variance) first.
    k : int
        Gibbs steps per update (CD-k or PCD-k).
    persistent : bool
        Persistent contrastive divergence: the negative chain (one per row of a minibatch)
        continues from where the previous update left it instead of restarting at the data.
        PCD needs a gentler momentum (about 0.5): with 0.95 the weights move faster than the
        chains can mix and training stalls.
    learning_rate, momentum, weight_decay : float
        ``Δ ← momentum·Δ + learning_rate·(gradient - weight_decay·W)``; biases are not decayed.
    init : {"xavier", "normal"}
        Weight initialisation: Glorot-uniform ``U(±sqrt(6 / (n_visible + n_hidden)))`` or
        ``N(0, 0.01²)`` as in Hinton's guide. Biases start at zero.
    error : {"mse", "cosine"}
        Reconstruction error reported by :meth:`fit` and :meth:`reconstruction_error`: mean
        squared error, or the mean angle between a row and its reconstruction divided by pi.
    seed : int
        Seeds the initial weights, the shuffling and every Gibbs sample.

    Examples
    --------
    >>> rbm = RBM(784, 64, learning_rate=0.01, momentum=0.95)  # doctest: +SKIP
    >>> errors = rbm.fit(x_train, epochs=30, batch_size=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        visible: str = "bernoulli",
        k: int = 1,
        persistent: bool = False,
        learning_rate: float = 0.01,
        momentum: float = 0.95,
        weight_decay: float = 0.0,
        init: str = "xavier",
        error: str = "mse",
        seed: int = 0,
    ) -> None:
        self.n_visible = positive_int(n_visible, "n_visible")
        self.n_hidden = positive_int(n_hidden, "n_hidden")
        self.visible = choice(visible, "visible", VISIBLE_TYPES)
        self.k = positive_int(k, "k")
        self.persistent = bool(persistent)
        self.learning_rate = number_in(learning_rate, "learning_rate")
        self.momentum = number_in(momentum, "momentum", high=1.0)
        self.weight_decay = number_in(weight_decay, "weight_decay")
        self.init = choice(init, "init", INIT_TYPES)
        self.error = choice(error, "error", ERROR_TYPES)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._w = tf.Variable(self._initial_weights(), name="weights")
        self._b = tf.Variable(tf.zeros([self.n_visible]), name="visible_bias")
        self._c = tf.Variable(tf.zeros([self.n_hidden]), name="hidden_bias")
        self._dw = tf.Variable(tf.zeros_like(self._w), name="weights_velocity")
        self._db = tf.Variable(tf.zeros_like(self._b), name="visible_bias_velocity")
        self._dc = tf.Variable(tf.zeros_like(self._c), name="hidden_bias_velocity")
        self._chain: tf.Variable | None = None  # PCD fantasy particles, made by fit()
        self._fns: dict[str, tf.types.experimental.PolymorphicFunction] = {}

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        x: np.ndarray,
        *,
        epochs: int,
        batch_size: int = 10,
        shuffle: bool = True,
        verbose: bool = True,
        callback: Callable[[int, RBM], None] | None = None,
    ) -> np.ndarray:
        """Train on ``x`` and return the mean minibatch reconstruction error of each epoch.

        Parameters
        ----------
        x : ndarray, shape (N, n_visible) or images (N, H, W[, C]) with H·W·C == n_visible
            Training data; uint8 is scaled to [0, 1].
        epochs : int
            Passes over the data (capped by the ``VIZKIT_MAX_STEPS`` environment variable).
        batch_size : int
            Rows per update; the last minibatch may be smaller.
        shuffle : bool
            Reshuffle the rows before every epoch.
        verbose : bool
            Show a tqdm progress bar with the running error.
        callback : callable, optional
            Called as ``callback(epoch, rbm)`` after every epoch (e.g. to log or plot).

        Returns
        -------
        ndarray, shape (epochs,), float32
            Error (``self.error``) of the one-pass mean-field reconstruction of each minibatch,
            measured just before its update and averaged over the epoch.
        """
        data = tf.constant(self._check(x, "x"))
        epochs = _cap(positive_int(epochs, "epochs"))
        batch_size = positive_int(batch_size, "batch_size")
        n = int(data.shape[0])
        if self.persistent:
            self._init_chain(data, min(batch_size, n))
        bar = _progress(epochs, verbose)
        errors = np.empty(epochs, np.float32)
        for epoch in range(epochs):
            order = self._rng.permutation(n) if shuffle else np.arange(n)
            step_seed = int(self._rng.integers(2**31 - 1))
            errors[epoch] = float(
                self._compiled("epoch")(
                    data, tf.constant(order, tf.int32), tf.constant(batch_size), step_seed
                )
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix({self.error: f"{errors[epoch]:.4f}"})
            if callback is not None:
                callback(epoch, self)
        if bar is not None:
            bar.close()
        return errors

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Hidden probabilities ``P(h = 1 | v)``, shape (N, n_hidden), float32 in [0, 1]."""
        return self._map("hidden", self._check(x, "x"))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """One mean-field up-down pass ``v -> P(h|v) -> E[v|h]``, shape (N, n_visible).

        Bernoulli visibles give probabilities in [0, 1]; Gaussian visibles give means.
        """
        return self._map("reconstruct", self._check(x, "x"))

    def free_energy(self, x: np.ndarray) -> np.ndarray:
        """Free energy ``F(v) = -log Σ_h exp(-E(v, h))`` of each row, shape (N,), float32.

        Bernoulli: ``-b·v - Σ_j softplus(c_j + v·W_j)``; Gaussian: ``||v - b||²/2 - Σ_j
        softplus(c_j + v·W_j)``.
        """
        return self._map("free_energy", self._check(x, "x"))

    def reconstruction_error(self, x: np.ndarray) -> float:
        """Mean reconstruction error (``self.error``) of one mean-field up-down pass over ``x``."""
        data = self._check(x, "x")
        return float(_error(tf.constant(data), tf.constant(self.reconstruct(data)), self.error))

    def sample(
        self,
        n: int,
        *,
        gibbs_steps: int = 1000,
        init: np.ndarray | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Run ``n`` block-Gibbs chains and return the final visible probabilities or means.

        Parameters
        ----------
        n : int
            Number of chains (rows returned).
        gibbs_steps : int
            Full ``v -> h -> v`` sweeps (capped by ``VIZKIT_MAX_STEPS``).
        init : ndarray, shape (n, n_visible), optional
            Starting visible states; default: Bernoulli(1/2) noise, or N(b, 1) for Gaussian.
        seed : int, optional
            Seed of the chains; default: drawn from the model's generator.

        Returns
        -------
        ndarray, shape (n, n_visible), float32
            ``P(v = 1 | h)`` in [0, 1] (Bernoulli) or ``E[v | h]`` (Gaussian) after the last step.
        """
        n = positive_int(n, "n")
        steps = _cap(positive_int(gibbs_steps, "gibbs_steps"))
        seed = int(self._rng.integers(2**31 - 1)) if seed is None else int(seed)
        if init is None:
            init = self._noise_visible(n, np.random.default_rng(seed))
        else:
            init = self._check(init, "init")
            if init.shape[0] != n:
                raise ValueError(f"init must have n={n} rows, got shape {init.shape}")
        out = self._compiled("sample")(tf.constant(init), tf.constant(steps), seed)
        return out.numpy()

    @property
    def weights(self) -> np.ndarray:
        """Weights ``W``, shape (n_visible, n_hidden), float32 (a copy)."""
        return self._w.numpy()

    @property
    def visible_bias(self) -> np.ndarray:
        """Visible biases ``b``, shape (n_visible,), float32 (a copy)."""
        return self._b.numpy()

    @property
    def hidden_bias(self) -> np.ndarray:
        """Hidden biases ``c``, shape (n_hidden,), float32 (a copy)."""
        return self._c.numpy()

    def set_parameters(
        self,
        *,
        weights: np.ndarray | None = None,
        visible_bias: np.ndarray | None = None,
        hidden_bias: np.ndarray | None = None,
    ) -> None:
        """Overwrite some parameters (shapes must match); the momentum buffers are reset."""
        for value, var, name in (
            (weights, self._w, "weights"),
            (visible_bias, self._b, "visible_bias"),
            (hidden_bias, self._c, "hidden_bias"),
        ):
            if value is None:
                continue
            arr = np.asarray(value, np.float32)
            if arr.shape != tuple(var.shape) or not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{name} must be a finite array of shape {tuple(var.shape)}, got {arr.shape}"
                )
            var.assign(arr)
        for velocity in (self._dw, self._db, self._dc):
            velocity.assign(tf.zeros_like(velocity))

    def get_config(self) -> dict:
        """The constructor arguments, JSON-serialisable."""
        return {
            "n_visible": self.n_visible,
            "n_hidden": self.n_hidden,
            "visible": self.visible,
            "k": self.k,
            "persistent": self.persistent,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "init": self.init,
            "error": self.error,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write parameters, momentum buffers and the JSON config to one ``.npz`` file.

        The file is written to a temporary name and renamed, so a crash never leaves a
        half-written model; nothing is pickled. Returns the path written.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = {name: var.numpy() for name, var in self._state().items()}
        arrays["config"] = np.array(json.dumps({"format": _FORMAT, **self.get_config()}))
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RBM:
        """Rebuild an RBM written by :meth:`save` (no pickle is ever loaded)."""
        path = Path(path)
        if not path.exists() and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data["config"]))
            if config.pop("format", None) != _FORMAT:
                raise ValueError(f"{path} is not an RBM file written by RBM.save")
            rbm = cls(**config)
            for name, var in rbm._state().items():
                if name not in data.files or data[name].shape != tuple(var.shape):
                    raise ValueError(f"{path}: array {name!r} is missing or has the wrong shape")
                var.assign(data[name])
            if "chain" in data.files:
                rbm._chain = tf.Variable(data["chain"], name="chain")
        return rbm

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"RBM({args})"

    # ------------------------------------------------------------------ one update
    def _step(self, v0: tf.Tensor, hidden_u: tf.Tensor, visible_u: tf.Tensor | None = None):
        """Apply one CD-k / PCD-k update for the minibatch ``v0`` and return its error.

        All randomness comes in as uniforms so that tests can replay an update exactly:
        ``hidden_u`` has shape (k, B, n_hidden) and ``visible_u`` (k, B, n_visible), where B is
        the minibatch size for CD and the number of persistent chains for PCD. ``visible_u`` is
        needed only for PCD, whose chains sample visible states; CD reconstructions use means.
        """
        h0 = self._hidden(v0)
        error = _error(v0, self._visible_mean(h0), self.error)
        start = self._chain if self.persistent else v0
        vk = self._gibbs(start, hidden_u, visible_u if self.persistent else None)
        hk = self._hidden(vk)
        if self.persistent:
            self._chain.assign(vk)
        n_pos = tf.cast(tf.shape(v0)[0], tf.float32)
        n_neg = tf.cast(tf.shape(vk)[0], tf.float32)
        grad_w = tf.matmul(v0, h0, transpose_a=True) / n_pos
        grad_w -= tf.matmul(vk, hk, transpose_a=True) / n_neg
        grad_w -= self.weight_decay * self._w
        grad_b = tf.reduce_mean(v0, 0) - tf.reduce_mean(vk, 0)
        grad_c = tf.reduce_mean(h0, 0) - tf.reduce_mean(hk, 0)
        for var, velocity, grad in (
            (self._w, self._dw, grad_w),
            (self._b, self._db, grad_b),
            (self._c, self._dc, grad_c),
        ):
            velocity.assign(self.momentum * velocity + self.learning_rate * grad)
            var.assign_add(velocity)
        return error

    def _gibbs(self, v: tf.Tensor, hidden_u: tf.Tensor, visible_u: tf.Tensor | None):
        """``k`` sweeps ``v -> h ~ P(h|v) -> v``; visible states are sampled iff ``visible_u``."""
        for step in range(self.k):  # k is a small Python int: unrolled at trace time
            h = tf.cast(hidden_u[step] < self._hidden(v), tf.float32)
            v = self._visible_mean(h)
            if visible_u is not None:
                v = self._sample_visible(v, visible_u[step])
        return v

    def _hidden(self, v: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.matmul(v, self._w) + self._c)

    def _visible_mean(self, h: tf.Tensor) -> tf.Tensor:
        pre = tf.matmul(h, self._w, transpose_b=True) + self._b
        return tf.sigmoid(pre) if self.visible == "bernoulli" else pre

    def _sample_visible(self, mean: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        if self.visible == "bernoulli":
            return tf.cast(u < mean, tf.float32)
        # inverse-CDF turns the same uniforms into N(mean, 1) draws
        eps = tf.math.ndtri(tf.clip_by_value(u, 1e-7, 1.0 - 1e-7))
        return mean + eps

    def _reconstruct(self, v: tf.Tensor) -> tf.Tensor:
        return self._visible_mean(self._hidden(v))

    def _free_energy(self, v: tf.Tensor) -> tf.Tensor:
        hidden_term = tf.reduce_sum(tf.math.softplus(tf.matmul(v, self._w) + self._c), axis=1)
        if self.visible == "bernoulli":
            visible_term = -tf.linalg.matvec(v, self._b)
        else:
            visible_term = 0.5 * tf.reduce_sum(tf.square(v - self._b), axis=1)
        return visible_term - hidden_term

    # ------------------------------------------------------------------ compiled loops
    def _epoch(self, data, order, batch_size, seed):
        """One pass over ``data[order]`` in minibatches, all inside one graph."""
        n = tf.shape(order)[0]
        n_batches = (n + batch_size - 1) // batch_size
        chains = tf.shape(self._chain)[0] if self.persistent else batch_size
        total = tf.constant(0.0)
        for i in tf.range(n_batches):
            rows = order[i * batch_size : tf.minimum((i + 1) * batch_size, n)]
            v0 = tf.gather(data, rows)
            m = chains if self.persistent else tf.shape(v0)[0]
            hidden_u = tf.random.stateless_uniform(
                tf.stack([self.k, m, self.n_hidden]), seed=tf.stack([seed, 2 * i])
            )
            visible_u = None
            if self.persistent:
                visible_u = tf.random.stateless_uniform(
                    tf.stack([self.k, m, self.n_visible]), seed=tf.stack([seed, 2 * i + 1])
                )
            total += self._step(v0, hidden_u, visible_u)
        return total / tf.cast(n_batches, tf.float32)

    def _sample_chains(self, v, steps, seed):
        mean = v
        for i in tf.range(steps):
            hidden_u = tf.random.stateless_uniform(
                tf.stack([tf.shape(v)[0], self.n_hidden]), seed=tf.stack([seed, 2 * i])
            )
            visible_u = tf.random.stateless_uniform(tf.shape(v), seed=tf.stack([seed, 2 * i + 1]))
            mean = self._visible_mean(tf.cast(hidden_u < self._hidden(v), tf.float32))
            v = self._sample_visible(mean, visible_u)
        return mean

    def _compiled(self, name: str):
        if name not in self._fns:
            matrix = tf.TensorSpec([None, self.n_visible], tf.float32)
            scalar = tf.TensorSpec([], tf.int32)
            specs = {
                "epoch": (self._epoch, [matrix, tf.TensorSpec([None], tf.int32), scalar, scalar]),
                "sample": (self._sample_chains, [matrix, scalar, scalar]),
                "hidden": (self._hidden, [matrix]),
                "reconstruct": (self._reconstruct, [matrix]),
                "free_energy": (self._free_energy, [matrix]),
            }
            fn, signature = specs[name]
            # a fresh closure per instance: TensorFlow's retracing warning counts traces per
            # Python function, and many RBMs (a DBN, tests) would share the unbound method
            self._fns[name] = tf.function(
                _fresh(fn), input_signature=signature, reduce_retracing=True
            )
        return self._fns[name]

    def _map(self, name: str, x: np.ndarray) -> np.ndarray:
        fn = self._compiled(name)
        parts = [fn(tf.constant(x[i : i + _CHUNK])).numpy() for i in range(0, len(x), _CHUNK)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ helpers
    def _state(self) -> dict[str, tf.Variable]:
        state = {
            "weights": self._w,
            "visible_bias": self._b,
            "hidden_bias": self._c,
            "weights_velocity": self._dw,
            "visible_bias_velocity": self._db,
            "hidden_bias_velocity": self._dc,
        }
        if self._chain is not None:
            state["chain"] = self._chain
        return state

    def _initial_weights(self) -> np.ndarray:
        shape = (self.n_visible, self.n_hidden)
        if self.init == "xavier":
            limit = math.sqrt(6.0 / (self.n_visible + self.n_hidden))
            return self._rng.uniform(-limit, limit, shape).astype(np.float32)
        return self._rng.normal(0.0, 0.01, shape).astype(np.float32)

    def _noise_visible(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.visible == "bernoulli":
            return (rng.random((n, self.n_visible)) < 0.5).astype(np.float32)
        return (self.visible_bias + rng.standard_normal((n, self.n_visible))).astype(np.float32)

    def _init_chain(self, data: tf.Tensor, size: int) -> None:
        """Start (or resize) the persistent chains at random training rows."""
        if self._chain is not None and int(self._chain.shape[0]) == size:
            return
        rows = self._rng.choice(int(data.shape[0]), size=size, replace=False)
        self._chain = tf.Variable(tf.gather(data, rows), name="chain")
        self._fns.pop("epoch", None)  # the epoch graph captured the old variable

    def _check(self, x, name: str) -> np.ndarray:
        return check_data(x, self.n_visible, bernoulli=self.visible == "bernoulli", name=name)


def check_data(x, n_visible: int, *, bernoulli: bool, name: str = "x") -> np.ndarray:
    """Validate and flatten data for an RBM: float32 array of shape (N, n_visible).

    Images (N, H, W[, C]) are flattened; uint8 is scaled to [0, 1]. Raises ``ValueError`` for
    empty input, a wrong number of features, non-finite values, or Bernoulli data outside [0, 1].
    """
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one row, got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1).astype(np.float32) / np.float32(scale)
    if arr.shape[1] != n_visible:
        raise ValueError(
            f"{name} must have shape (N, {n_visible}) (or images with {n_visible} values each), "
            f"got shape {np.shape(x)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if bernoulli and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1] for Bernoulli visible units, got range "
            f"[{arr.min():.4g}, {arr.max():.4g}]; use visible='gaussian' for real-valued data"
        )
    return np.ascontiguousarray(arr)


def _fresh(fn: Callable) -> Callable:
    """A new callable wrapping ``fn`` (a ``functools.partial``, which has no ``__code__``).

    TensorFlow's retracing warning counts traces per code object, so many RBMs (a DBN, a test
    suite) sharing one method would otherwise warn about retracing that is in fact one trace each.
    """
    return functools.partial(fn)


def _error(v: tf.Tensor, recon: tf.Tensor, kind: str) -> tf.Tensor:
    if kind == "mse":
        return tf.reduce_mean(tf.square(v - recon))
    cos = tf.reduce_sum(tf.nn.l2_normalize(v, 1) * tf.nn.l2_normalize(recon, 1), axis=1)
    return tf.reduce_mean(tf.acos(tf.clip_by_value(cos, -1.0, 1.0))) / math.pi


def _cap(n: int) -> int:
    """Honour the ``VIZKIT_MAX_STEPS`` cap that tests and CI set on long loops."""
    cap = os.environ.get("VIZKIT_MAX_STEPS")
    return min(n, int(cap)) if cap else n


def _progress(total: int, verbose: bool):
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="RBM", unit="epoch")
