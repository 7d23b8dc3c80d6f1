"""What the capture stages know about a loaded model: its shape, its inputs, and its adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..catalog import ModelEntry

if TYPE_CHECKING:
    from .adapters import Adapter


@dataclass
class ImageSpec:
    """How pixels reach the model: input size, patch size, normalisation, tokens before patches."""

    size: int
    patch: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    prefix_tokens: int = 1  # CLS (+ register tokens)

    @property
    def grid(self) -> int:
        return self.size // self.patch


@dataclass
class LoadedModel:
    """A model ready for capture. `heads` counts query heads; captured keys are expanded to one per
    query head, and query head h shares key/value head h // (heads // kv_heads) (transformers' repeat_kv order).
    """

    entry: ModelEntry
    model: torch.nn.Module
    device: torch.device
    layers: int
    heads: int
    head_dim: int
    causal: bool
    tokenizer: object | None = None
    image: ImageSpec | None = None
    max_length: int = 512
    source: str = ""  # where the weights came from: a folder, a hub id, or "random init"
    revision: str = ""
    adapter: Adapter = field(kw_only=True)  # the kind of model: every step after loading asks it
    kv_heads: int | None = field(default=None, kw_only=True)  # key/value heads; None: one per query head

    def __post_init__(self):
        if self.kv_heads is None:
            self.kv_heads = self.heads
        if self.kv_heads < 1 or self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} query heads cannot share {self.kv_heads} key/value heads evenly")
