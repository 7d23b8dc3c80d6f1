"""The one capture mechanism: a context manager that records the q and k each attention used.

Hugging Face models: a registered attention function (transformers' AttentionInterface)
sees the query and key exactly as the attention uses them (after rotary embeddings and q/k
norms), records them, and delegates to SDPA. timm ViTs: forward hooks on each attention
block's `q_norm`/`k_norm` (identity when a model has no q/k norm). Hooks and the attention
implementation are restored on exit, even on error.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

CAPTURE_IMPL = "qkatlas_capture"

# id(attention module) -> (layer, sink) while a trace is active.
_ACTIVE: dict[int, tuple[int, Callable]] = {}
_LAYER_IN_PATH = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")

# sink(layer, q, k, scaling) with q, k: (batch, heads, seq, head_dim)
Sink = Callable[[int, torch.Tensor, torch.Tensor, float], None]


def layer_of(path: str) -> int | None:
    """The layer index in a dotted module path: 'encoder.layer.3.attention.self' -> 3."""
    m = _LAYER_IN_PATH.search(path)
    return int(m.group(1)) if m else None


def _capture_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    entry = _ACTIVE.get(id(module))
    if entry is not None:
        layer, sink = entry
        if key.shape[1] != query.shape[1]:  # grouped-query attention: the key each head used
            key_used = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
        else:
            key_used = key
        sink(layer, query, key_used, float(scaling if scaling is not None else query.shape[-1] ** -0.5))
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)


def _register_hf_capture() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(CAPTURE_IMPL, _capture_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(CAPTURE_IMPL, sdpa_mask)


def is_timm(model: torch.nn.Module) -> bool:
    return type(model).__module__.startswith("timm.")


@contextmanager
def trace_attention(model: torch.nn.Module, sink: Sink) -> Iterator[None]:
    """While active, every attention call of `model` reports (layer, q, k, scaling) to `sink`."""
    if is_timm(model):
        with _trace_timm(model, sink):
            yield
        return
    _register_hf_capture()
    modules = [(name, m) for name, m in model.named_modules() if layer_of(name) is not None]
    config = model.config
    previous = config._attn_implementation
    for name, m in modules:
        _ACTIVE[id(m)] = (layer_of(name), sink)
    config._attn_implementation = CAPTURE_IMPL
    try:
        yield
    finally:
        config._attn_implementation = previous
        for _, m in modules:
            _ACTIVE.pop(id(m), None)


@contextmanager
def _trace_timm(model: torch.nn.Module, sink: Sink) -> Iterator[None]:
    handles = []
    for name, m in model.named_modules():
        if not (hasattr(m, "q_norm") and hasattr(m, "k_norm") and hasattr(m, "scale")):
            continue
        layer = layer_of(name)
        pending: dict[str, torch.Tensor] = {}

        def on_q(_mod, _inp, out, pending=pending):
            pending["q"] = out

        def on_k(_mod, _inp, out, pending=pending, layer=layer, attn=m):
            sink(layer, pending.pop("q"), out, float(attn.scale))

        handles.append(m.q_norm.register_forward_hook(on_q))
        handles.append(m.k_norm.register_forward_hook(on_k))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
