"""Corpus items -> model inputs, with the provenance of every token or patch.

Text: tokenized once up front (so batches can be sorted by length); images: resized to the
model's input size, and those exact pixels are what the atlas stores and shows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch

from ..corpus import ImageItem, TextItem
from ..errors import InvalidInput
from .model import ImageSpec, LoadedModel


@dataclass
class Prepared:
    """Every item ready to batch. Token rows follow item order: item i owns rows offsets[i]:offsets[i+1]."""

    lengths: np.ndarray  # (items,) tokens per item
    offsets: np.ndarray  # (items + 1,)
    token_rows: dict[str, list] = field(default_factory=dict)  # the token table, column by column
    input_ids: list[list[int]] | None = None
    pixels: torch.Tensor | None = None  # (items, 3, size, size) normalised
    pngs: list[bytes] | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])


def prepare(loaded: LoadedModel, items) -> Prepared:
    if not items:
        raise InvalidInput("the corpus has no items")
    if loaded.image is not None:
        if not isinstance(items[0], ImageItem):
            raise InvalidInput(f"model {loaded.entry.id!r} reads images, but the corpus holds text")
        return _prepare_images(loaded.image, items)
    if not isinstance(items[0], TextItem):
        raise InvalidInput(f"model {loaded.entry.id!r} reads text, but the corpus holds images")
    return _prepare_text(loaded, items)


def _columns() -> dict[str, list]:
    return {k: [] for k in ("item", "position", "text", "special", "row", "col")}


def _prepare_text(loaded: LoadedModel, items: list[TextItem]) -> Prepared:
    tok = loaded.tokenizer
    # Character offsets in the item's text (fast tokenizers only) let two atlases on the same
    # corpus name the same words across tokenizers (compare.py); (-1, -1) where there are none.
    fast = bool(getattr(tok, "is_fast", False))
    enc = tok([it.text for it in items], truncation=True, max_length=loaded.max_length,
              return_special_tokens_mask=True, add_special_tokens=True, return_offsets_mapping=fast)
    rows = {**_columns(), "start": [], "end": []}
    ids_all = enc["input_ids"]
    for n, (it, ids, special) in enumerate(zip(items, ids_all, enc["special_tokens_mask"])):
        texts = [tok.decode([i]) for i in ids]
        spans = enc["offset_mapping"][n] if fast else [(0, 0)] * len(ids)
        rows["start"] += [a if b > a else -1 for a, b in spans]
        rows["end"] += [b if b > a else -1 for a, b in spans]
        rows["item"] += [it.item] * len(ids)
        rows["position"] += list(range(len(ids)))
        rows["text"] += texts
        rows["special"] += [bool(s) for s in special]
        rows["row"] += [-1] * len(ids)
        rows["col"] += [-1] * len(ids)
    lengths = np.array([len(x) for x in ids_all])
    return Prepared(lengths, np.concatenate([[0], np.cumsum(lengths)]), rows, input_ids=ids_all)


def image_to_model_pixels(image, spec: ImageSpec) -> tuple[torch.Tensor, bytes]:
    """PIL image -> ((3, size, size) normalised tensor, PNG of the exact pixels the model sees)."""
    from PIL import Image

    img = image.convert("RGB")
    if img.size != (spec.size, spec.size):
        w, h = img.size
        side = min(w, h)
        img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        img = img.resize((spec.size, spec.size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.array(spec.mean, dtype=np.float32)) / np.array(spec.std, dtype=np.float32)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()), buf.getvalue()


def patch_provenance(spec: ImageSpec) -> tuple[list[str], list[bool], list[int], list[int]]:
    """Text, special flag, row and col of each token of one image: prefix tokens, then patches row by row."""
    g = spec.grid
    prefix = ["[CLS]"] + [f"[REG{i}]" for i in range(spec.prefix_tokens - 1)]
    texts = prefix + [f"patch r{r} c{c}" for r in range(g) for c in range(g)]
    special = [True] * len(prefix) + [False] * (g * g)
    rows = [-1] * len(prefix) + [r for r in range(g) for _ in range(g)]
    cols = [-1] * len(prefix) + [c for _ in range(g) for c in range(g)]
    return texts, special, rows, cols


def _prepare_images(spec: ImageSpec, items: list[ImageItem]) -> Prepared:
    texts, special, prow, pcol = patch_provenance(spec)
    n = len(texts)
    rows = _columns()
    pixels, pngs = [], []
    for it in items:
        px, png = image_to_model_pixels(it.image, spec)
        pixels.append(px)
        pngs.append(png)
        rows["item"] += [it.item] * n
        rows["position"] += list(range(n))
        rows["text"] += texts
        rows["special"] += special
        rows["row"] += prow
        rows["col"] += pcol
    lengths = np.full(len(items), n)
    return Prepared(lengths, np.concatenate([[0], np.cumsum(lengths)]), rows, pixels=torch.stack(pixels), pngs=pngs)
