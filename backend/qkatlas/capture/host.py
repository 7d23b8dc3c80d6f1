"""Where captured q/k land: the host arrays (tokens, heads, head_dim), one per layer.

Direct (the CPU): each attention call's valid tokens are copied straight to their rows.
Staged (CUDA): a blocking copy per attention call would stall the GPU twice per layer. Each
call's valid tokens are instead copied without blocking into pinned host buffers (two sets,
used by alternate batches), and a batch lands in the arrays while the GPU runs the next one.
Pinned memory held: 2 x layers x 2 x (a batch's tokens x heads x head_dim) of the output dtype.
"""

from __future__ import annotations

import numpy as np
import torch


class HostArrays:
    """Fills q_out / k_out (per layer: (tokens, heads, head_dim) numpy arrays) batch by batch:
    `start(valid, dest)`, `put(layer, q, k)` for every attention call, `end()`; `finish()` after
    the last batch. valid: (batch, seq) bool on the device; dest: the rows of the valid tokens."""

    def __init__(self, q_out: list[np.ndarray], k_out: list[np.ndarray], dtype: torch.dtype, staged: bool):
        self.out = {"q": q_out, "k": k_out}
        self.dtype = dtype
        self.staged = staged
        self._buffers: list[dict[tuple[str, int], torch.Tensor]] = [{}, {}]  # per set: (q|k, layer) -> pinned
        self._batch = 0
        self._landing: tuple | None = None  # the previous batch: (buffers, dest, layers put, its done event)
        self._put: list[int] = []

    def start(self, valid: torch.Tensor, dest: np.ndarray) -> None:
        # Integer indices, found once per batch: indexing by a mask would wait for the GPU at every call.
        self._valid = valid.nonzero(as_tuple=True) if self.staged else valid
        self._on_cuda = valid.is_cuda
        self._dest = dest
        self._put = []

    def put(self, layer: int, q: torch.Tensor, k: torch.Tensor) -> None:
        """q, k: (batch, heads, seq, head_dim) as the attention used them."""
        for name, x in (("q", q), ("k", k)):
            rows = x.transpose(1, 2)[self._valid].to(self.dtype)  # (valid tokens, heads, head_dim)
            if self.staged:
                self._buffer(name, layer, rows)[: len(rows)].copy_(rows, non_blocking=True)
            else:
                self.out[name][layer][self._dest] = rows.cpu().numpy()
        self._put.append(layer)

    def end(self) -> None:
        """The batch's copies are queued: land the previous batch while the GPU works on this one."""
        if not self.staged:
            return
        done = torch.cuda.Event() if self._on_cuda else None
        if done is not None:
            done.record()
        previous, self._landing = self._landing, (self._buffers[self._batch % 2], self._dest, self._put, done)
        self._batch += 1
        if previous is not None:
            self._land(*previous)

    def finish(self) -> None:
        if self._landing is not None:
            self._land(*self._landing)
            self._landing = None

    def _buffer(self, name: str, layer: int, rows: torch.Tensor) -> torch.Tensor:
        """This batch's host buffer for (name, layer), at least as long as `rows`; reused two batches on."""
        buffers = self._buffers[self._batch % 2]
        buf = buffers.get((name, layer))
        if buf is None or len(buf) < len(rows):
            # Batches run longest first, so the first two size the buffers once.
            buf = torch.empty(rows.shape, dtype=rows.dtype, pin_memory=rows.is_cuda)
            buffers[(name, layer)] = buf
        return buf

    def _land(self, buffers: dict, dest: np.ndarray, layers: list[int], done) -> None:
        if done is not None:
            done.synchronize()
        for layer in layers:
            for name in ("q", "k"):
                self.out[name][layer][dest] = buffers[(name, layer)][: len(dest)].numpy()
