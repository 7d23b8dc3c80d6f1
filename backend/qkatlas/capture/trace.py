"""The one capture mechanism: context managers that route what chosen attention modules compute
to a sink, and undo every change on exit, even on error.

Hugging Face models: a registered attention function (transformers' AttentionInterface) sees
the query and key exactly as the attention uses them (after rotary embeddings and q/k norms),
reports them for the traced modules, and delegates to SDPA. Other models: forward hooks.
Which modules are traced, and which layer each one is, is the adapter's business.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

CAPTURE_IMPL = "qkatlas_capture"

# sink(layer, q, k, scaling) with q, k: (batch, heads, seq, head_dim); k already expanded to one per query head.
Sink = Callable[[int, torch.Tensor, torch.Tensor, float], None]
Hook = Callable[[torch.nn.Module, tuple, object], None]

# id(attention module) -> (layer, sink) while a trace is active.
_ACTIVE: dict[int, tuple[int, Sink]] = {}
_LAYER_IN_PATH = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


def layer_of(path: str) -> int | None:
    """The layer index in a dotted module path: 'encoder.layer.3.attention.self' -> 3."""
    m = _LAYER_IN_PATH.search(path)
    return int(m.group(1)) if m else None


def _capture_attention(module, query, key, value, attention_mask, scaling=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    entry = _ACTIVE.get(id(module))
    if entry is not None:
        layer, sink = entry
        if key.shape[1] != query.shape[1]:  # grouped-query attention: the key each query head used
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


@contextmanager
def attn_implementation(model: torch.nn.Module, name: str) -> Iterator[None]:
    """While active, a Hugging Face model computes attention with the registered function `name`."""
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


@contextmanager
def attention_calls(model: torch.nn.Module, layers: dict[torch.nn.Module, int], sink: Sink) -> Iterator[None]:
    """While active, every attention call of a module in `layers` reports (its layer, q, k, scaling) to `sink`."""
    _register_hf_capture()
    try:
        for module, layer in layers.items():
            _ACTIVE[id(module)] = (layer, sink)
        with attn_implementation(model, CAPTURE_IMPL):
            yield
    finally:
        for module in layers:
            _ACTIVE.pop(id(module), None)


@contextmanager
def forward_hooks(hooks: list[tuple[torch.nn.Module, Hook]]) -> Iterator[None]:
    """While active, each (module, hook) pair is a forward hook: hook(module, inputs, output)."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
