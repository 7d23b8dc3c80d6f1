"""Catalog entry -> model ready for capture, on the chosen device.

The entry's adapter does the loading (adapters.py: a local folder named by the entry -> the
Hugging Face cache -> the hub, a GGUF file through its converted copy in the qkatlas cache
(gguf.py), or random init at the real architecture with a fixed seed); this module picks the
device and puts the model there.
"""

from __future__ import annotations

import torch

from ..catalog import ModelEntry
from ..errors import InvalidInput
from ..progress import Reporter, Silent
from ..settings import Settings
from .adapters import adapter_for
from .model import ImageSpec, LoadedModel

__all__ = ["ImageSpec", "LoadedModel", "load_model", "pick_device"]


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda") and not requested.startswith("cuda:"):
        raise InvalidInput(f"unknown device {requested!r}; use auto, cpu or cuda")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInput(f"device {requested!r} requested but CUDA is not available on this machine")
    return torch.device(requested)


def load_model(entry: ModelEntry, settings: Settings, device: str | None = None,
               reporter: Reporter | None = None) -> LoadedModel:
    """`reporter` shows the slow steps of loading (de-quantising a GGUF file the first time)."""
    dev = pick_device(device or settings.device)
    loaded = adapter_for(entry).load(entry, settings, dev, reporter or Silent())
    loaded.model.eval().to(dev)
    if dev.type == "cuda":
        loaded.model.half()
    return loaded
