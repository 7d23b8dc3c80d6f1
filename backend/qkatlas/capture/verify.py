"""Correctness check: attention rebuilt from captured q/k vs the model's own probabilities.

The reference is an independent forward pass with eager attention (`output_attentions` for
Hugging Face models; the softmax output entering `attn_drop` for timm with fused attention
off). Both are fp32 on the CPU unless the model was loaded on CUDA.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..joint import attention_heads
from .inputs import Prepared
from .loader import LoadedModel
from .run import batches, capture, forward, model_inputs
from .trace import is_timm


@contextmanager
def _eager_attention(loaded: LoadedModel, sink):
    """While active, `sink(layer, probs (batch, heads, seq, seq))` receives each layer's attention."""
    model = loaded.model
    if is_timm(model):
        handles = []
        for i, block in enumerate(model.blocks):
            previous = block.attn.fused_attn
            block.attn.fused_attn = False
            handles.append((block.attn, previous, block.attn.attn_drop.register_forward_hook(
                lambda _m, inp, _out, i=i: sink(i, inp[0]))))
        try:
            yield
        finally:
            for attn, previous, h in handles:
                attn.fused_attn = previous
                h.remove()
        return
    previous = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        yield
    finally:
        model.config._attn_implementation = previous


@torch.inference_mode()
def reference_attention(loaded: LoadedModel, prepared: Prepared, batch_size: int) -> list[list[np.ndarray]]:
    """[item][layer] -> (heads, n, n): the model's own attention over the item's valid tokens."""
    out: list[list[np.ndarray | None]] = [[None] * loaded.layers for _ in range(len(prepared.lengths))]
    state: dict = {}

    def sink(layer, probs):
        for row, i in enumerate(state["idx"]):
            n = int(prepared.lengths[i])
            out[i][layer] = probs[row, :, :n, :n].float().cpu().numpy()

    with _eager_attention(loaded, sink):
        for idx in batches(prepared, batch_size):
            state["idx"] = idx
            inputs, _ = model_inputs(loaded, prepared, idx)
            if is_timm(loaded.model):
                forward(loaded, inputs)
            else:
                result = loaded.model(**inputs, output_attentions=True)
                for layer, probs in enumerate(result.attentions):
                    sink(layer, probs)
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
        "device": str(loaded.device),
    }
