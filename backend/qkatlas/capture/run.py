"""Batched, no-grad forward passes that fill host arrays with every head's q and k.

Batches are sorted by length (less padding); each attention call selects the valid tokens on
the device and copies them to host once per layer and batch, to their final rows (host.py: on
CUDA through pinned buffers, without stalling the GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .host import HostArrays
from .inputs import Prepared
from .model import LoadedModel


@dataclass
class Captured:
    q: list[np.ndarray]  # per layer: (tokens, heads, head_dim)
    k: list[np.ndarray]
    scaling: list[float]  # per layer: the factor applied to q·k before the softmax


def batches(prepared: Prepared, batch_size: int) -> list[np.ndarray]:
    """Item indices grouped into batches of similar length (longest first)."""
    order = np.argsort(-prepared.lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def capture(
    loaded: LoadedModel,
    prepared: Prepared,
    batch_size: int = 32,
    dtype=np.float16,
    progress: Callable[[int], None] | None = None,
    staged: bool | None = None,
) -> Captured:
    """Every head's q and k for every valid token of `prepared`, in token-table row order.
    `staged`: copy through pinned buffers (host.py); by default on CUDA."""
    n, H, D, L = prepared.n_tokens, loaded.heads, loaded.head_dim, loaded.layers
    q_out = [np.empty((n, H, D), dtype=dtype) for _ in range(L)]
    k_out = [np.empty((n, H, D), dtype=dtype) for _ in range(L)]
    scaling = [0.0] * L
    torch_dtype = torch.float16 if dtype == np.float16 else torch.float32
    adapter = loaded.adapter
    host = HostArrays(q_out, k_out, torch_dtype, loaded.device.type == "cuda" if staged is None else staged)
    reported: set[int] = set()

    def sink(layer: int, q: torch.Tensor, k: torch.Tensor, scale: float) -> None:
        host.put(layer, q, k)
        scaling[layer] = scale
        reported.add(layer)

    with adapter.trace(loaded.model, sink):
        for idx in batches(prepared, batch_size):
            inputs, valid = adapter.inputs(loaded, prepared, idx)
            host.start(valid, np.concatenate([np.arange(prepared.offsets[i], prepared.offsets[i + 1]) for i in idx]))
            adapter.forward(loaded.model, inputs)
            host.end()
            if progress:
                progress(len(idx))
        host.finish()
    _check_every_layer(loaded, reported)
    return Captured(q_out, k_out, scaling)


def _check_every_layer(loaded: LoadedModel, reported: set[int]) -> None:
    """Rows of a layer that never reported would be uninitialised memory: refuse rather than store them."""
    missing = sorted(set(range(loaded.layers)) - reported)
    if missing:
        raise RuntimeError(f"model {loaded.entry.id!r}: the {loaded.adapter.name} adapter captured no attention "
                           f"in layers {missing}; this architecture needs its own adapter (capture/adapters.py)")
