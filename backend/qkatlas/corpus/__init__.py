"""Corpora: the items (sentences or images) a model is run on, each with a stable id.

`load_corpus(spec, modality, limit)` is the one entry point. `spec` is "default" (the bundled
corpus for the modality: sentences for text, photographs for images) or a path to a user's
.txt (one sentence per line), .jsonl ("text" field), .csv ("text" column) or a folder of images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput, UnknownCorpus


@dataclass(frozen=True)
class TextItem:
    item: int
    text: str
    label: str  # where it came from, e.g. "sentences.txt:12"


@dataclass(frozen=True)
class ImageItem:
    item: int
    image: "object"  # PIL.Image.Image in RGB mode
    label: str  # e.g. "astronaut crop 2" or the file name


@dataclass(frozen=True)
class Corpus:
    id: str  # "default", "images" or the user's file/folder name
    modality: str  # "text" or "image"
    items: tuple
    hash: str  # sha256 over the items' content, so an atlas knows what it was built from
    source: str


def content_hash(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def load_corpus(spec: str, modality: str, limit: int | None = None) -> Corpus:
    from . import images, text

    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}")
    loader = text if modality == "text" else images
    if spec in ("default", loader.DEFAULT_ID):
        corpus = loader.default_corpus()
    elif spec in ("default", text.DEFAULT_ID, images.DEFAULT_ID):
        other = images.DEFAULT_ID if modality == "text" else text.DEFAULT_ID
        raise InvalidInput(f"corpus {spec!r} holds {'images' if other == images.DEFAULT_ID else 'text'}, "
                           f"but this model reads {modality}")
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise UnknownCorpus(f"unknown corpus {spec!r}: not 'default' and no such file or folder")
        corpus = loader.load_path(path)
    if limit is not None and limit < len(corpus.items):
        kept = corpus.items[:limit]
        corpus = Corpus(corpus.id, corpus.modality, kept, loader.hash_items(kept), corpus.source)
    return corpus
