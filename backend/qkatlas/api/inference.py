"""Live inference for the API: one loaded model per catalog id, shared by every request.

The only API module that touches torch (imported on first use, so a server that never runs
live inference never loads it). Loading is slow, so a model stays loaded; a lock per model
serialises its forward passes, and one lock serialises loading across models (random-init
models seed torch's one global generator: two loads at once would interleave their draws and
build other weights than the atlas's). Callers run these functions off the event loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..catalog import ModelEntry
from ..errors import TooLarge, UnknownModel
from ..settings import Settings


@dataclass
class LiveCapture:
    """One input through the model: its tokens and every layer's q/k, float32 (n, heads, head_dim)."""

    tokens: list[dict]  # text, position, special, row, col
    q: list[np.ndarray]
    k: list[np.ndarray]
    scaling: list[float]
    causal: bool


class LiveModels:
    """The catalog's models, by id, loaded on first use; `catalog` is read once, when the app starts."""

    def __init__(self, settings: Settings, catalog: dict[str, ModelEntry]):
        self.settings = settings
        self.catalog = catalog
        self._models: dict = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._loading = threading.Lock()

    def _lock(self, model_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(model_id, threading.Lock())

    def entry(self, model_id: str) -> ModelEntry:
        """The catalog entry of `model_id`; UnknownModel (404) naming the models there are."""
        if model_id not in self.catalog:
            raise UnknownModel(f"unknown model {model_id!r}; the catalog has: {', '.join(sorted(self.catalog))}")
        return self.catalog[model_id]

    def _loaded(self, entry: ModelEntry):
        """The model of `entry`, loaded on first use (ModelUnavailable is not remembered: weights may appear)."""
        if entry.id not in self._models:
            from ..capture.loader import load_model

            with self._loading:
                self._models[entry.id] = load_model(entry, self.settings)
        return self._models[entry.id]

    def text(self, model_id: str, text: str) -> LiveCapture:
        from ..corpus import TextItem

        entry = self.entry(model_id)
        with self._lock(entry.id):
            loaded = self._loaded(entry)
            n = len(loaded.tokenizer(text, add_special_tokens=True)["input_ids"])
            limit = min(self.settings.max_text_tokens, loaded.max_length)
            if n > limit:
                raise TooLarge(f"text has {n} tokens; the limit is {limit} tokens "
                               f"(max_text_tokens={self.settings.max_text_tokens}, model maximum {loaded.max_length})")
            return self._capture(loaded, TextItem(0, text, "input"))

    def image(self, model_id: str, image) -> LiveCapture:
        """`image`: a PIL RGB image (live_input.read_image)."""
        from ..corpus import ImageItem

        entry = self.entry(model_id)
        with self._lock(entry.id):
            return self._capture(self._loaded(entry), ImageItem(0, image, "upload"))

    @staticmethod
    def _capture(loaded, item) -> LiveCapture:
        from ..capture.inputs import prepare
        from ..capture.run import capture

        prepared = prepare(loaded, [item])
        captured = capture(loaded, prepared, batch_size=1, dtype=np.float32)
        rows = prepared.token_rows
        tokens = [{"text": t, "position": p, "special": s, "row": r, "col": c}
                  for t, p, s, r, c in zip(rows["text"], rows["position"], rows["special"], rows["row"], rows["col"])]
        return LiveCapture(tokens, captured.q, captured.k, captured.scaling, loaded.causal)
