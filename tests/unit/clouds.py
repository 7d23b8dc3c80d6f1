"""What the tests of the batched torch reducers share: clustered clouds with known clusters, and
torch on one thread (small tensors gain nothing from threads, and OpenMP's spin-waits make them
several times slower on a shared 2-core machine)."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch


def mixture(points: int, features: int = 16, clusters: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian-cluster mixture: (points, features) float32 and each point's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, features)) * 6
    labels = rng.integers(0, clusters, points)
    return (centres[labels] + rng.normal(size=(points, features))).astype(np.float32), labels


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread():
    """Set per test: umap-learn's numba resets the OpenMP thread count that torch shares."""
    with torch_threads(1):
        yield
