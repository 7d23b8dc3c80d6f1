"""Batched, no-grad forward passes that fill host arrays with every head's q and k.

Batches are sorted by length (less padding); each attention call selects the valid tokens on
the device and copies them to host once per layer and batch, straight to their final rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .inputs import Prepared
from .loader import LoadedModel
from .trace import trace_attention


@dataclass
class Captured:
    q: list[np.ndarray]  # per layer: (tokens, heads, head_dim)
    k: list[np.ndarray]
    scaling: list[float]  # per layer: the factor applied to q·k before the softmax


def batches(prepared: Prepared, batch_size: int) -> list[np.ndarray]:
    """Item indices grouped into batches of similar length (longest first)."""
    order = np.argsort(-prepared.lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def model_inputs(loaded: LoadedModel, prepared: Prepared, idx: np.ndarray) -> tuple[dict, torch.Tensor]:
    """(kwargs for the forward pass, valid: (batch, seq) bool) for the items `idx`."""
    dev = loaded.device
    if prepared.pixels is not None:
        px = prepared.pixels[idx].to(dev, dtype=next(loaded.model.parameters()).dtype)
        valid = torch.ones(len(idx), int(prepared.lengths[idx[0]]), dtype=torch.bool, device=dev)
        return ({"x": px} if _is_timm(loaded) else {"pixel_values": px}), valid
    seq = int(prepared.lengths[idx].max())
    pad = loaded.tokenizer.pad_token_id
    ids = torch.full((len(idx), seq), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), seq), dtype=torch.long)
    for row, i in enumerate(idx):
        toks = prepared.input_ids[i]
        ids[row, : len(toks)] = torch.tensor(toks)
        mask[row, : len(toks)] = 1
    return {"input_ids": ids.to(dev), "attention_mask": mask.to(dev)}, mask.bool().to(dev)


def _is_timm(loaded: LoadedModel) -> bool:
    return type(loaded.model).__module__.startswith("timm.")


def forward(loaded: LoadedModel, inputs: dict):
    if _is_timm(loaded):
        return loaded.model.forward_features(inputs["x"])
    return loaded.model(**inputs)


@torch.inference_mode()
def capture(
    loaded: LoadedModel,
    prepared: Prepared,
    batch_size: int = 32,
    dtype=np.float16,
    progress: Callable[[int], None] | None = None,
) -> Captured:
    n, H, D, L = prepared.n_tokens, loaded.heads, loaded.head_dim, loaded.layers
    q_out = [np.empty((n, H, D), dtype=dtype) for _ in range(L)]
    k_out = [np.empty((n, H, D), dtype=dtype) for _ in range(L)]
    scaling = [0.0] * L
    torch_dtype = torch.float16 if dtype == np.float16 else torch.float32
    state: dict = {}

    def sink(layer: int, q: torch.Tensor, k: torch.Tensor, scale: float) -> None:
        valid, dest = state["valid"], state["dest"]
        # (batch, heads, seq, dim) -> (valid tokens, heads, dim), on the device, then one copy to host.
        qv = q.transpose(1, 2)[valid].to(torch_dtype).cpu().numpy()
        kv = k.transpose(1, 2)[valid].to(torch_dtype).cpu().numpy()
        q_out[layer][dest] = qv
        k_out[layer][dest] = kv
        scaling[layer] = scale

    with trace_attention(loaded.model, sink):
        for idx in batches(prepared, batch_size):
            inputs, valid = model_inputs(loaded, prepared, idx)
            state["valid"] = valid
            state["dest"] = np.concatenate(
                [np.arange(prepared.offsets[i], prepared.offsets[i + 1]) for i in idx]
            )
            forward(loaded, inputs)
            if progress:
                progress(len(idx))
    return Captured(q_out, k_out, scaling)
