"""Shared test settings: quiet TensorFlow, a headless matplotlib, fixed seeds, no network."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
# Caps optimisation steps in tests (activation maximisation, DeepDream, RBM epochs).
os.environ.setdefault("VIZKIT_MAX_STEPS", "40")

import socket

import keras
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open an outside connection fails the test at once instead of hanging."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "localhost", "::1")
            and not host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray with two CPUs for the whole session, started by the first test that asks
    (skipped where Ray is not installed) and shut down at the end."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            object_store_memory=512 * 2**20,
        )
    yield ray
    if started:
        ray.shutdown()
