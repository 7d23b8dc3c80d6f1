"""Correctness check: attention rebuilt from captured q/k vs the model's own probabilities.

The reference is an independent forward pass in which the model's adapter asks for eager
attention (`output_attentions` for Hugging Face models; the softmax entering `attn_drop` for
timm with fused attention off). Both are fp32 on the CPU unless the model was loaded on CUDA.
"""

from __future__ import annotations

import numpy as np
import torch

from ..joint import attention_heads
from .inputs import Prepared
from .model import LoadedModel
from .run import batches, capture


@torch.inference_mode()
def reference_attention(loaded: LoadedModel, prepared: Prepared, batch_size: int) -> list[list[np.ndarray]]:
    """[item][layer] -> (heads, n, n): the model's own attention over the item's valid tokens."""
    out: list[list[np.ndarray]] = [[] for _ in range(len(prepared.lengths))]
    for idx in batches(prepared, batch_size):
        inputs, _ = loaded.adapter.inputs(loaded, prepared, idx)
        per_layer = loaded.adapter.reference_attention(loaded.model, inputs)  # (batch, heads, seq, seq) each
        for row, i in enumerate(idx):
            n = int(prepared.lengths[i])
            out[i] = [probs[row, :, :n, :n].float().cpu().numpy() for probs in per_layer]
    return out


def verify(loaded: LoadedModel, prepared: Prepared, batch_size: int = 8) -> dict:
    """Max abs error between rebuilt and reference attention, over every item, layer and head."""
    captured = capture(loaded, prepared, batch_size=batch_size, dtype=np.float32)
    reference = reference_attention(loaded, prepared, batch_size)
    worst = 0.0
    for i in range(len(prepared.lengths)):
        a, b = prepared.offsets[i], prepared.offsets[i + 1]
        for layer in range(loaded.layers):
            rebuilt = attention_heads(captured.q[layer][a:b], captured.k[layer][a:b], captured.scaling[layer], loaded.causal)
            worst = max(worst, float(np.abs(rebuilt - reference[i][layer]).max()))
    return {
        "model": loaded.entry.id,
        "max_abs_err": worst,
        "items": int(len(prepared.lengths)),
        "tokens": prepared.n_tokens,
        "layers": loaded.layers,
        "heads": loaded.heads,
        "causal": loaded.causal,
        "device": str(loaded.device),
    }
