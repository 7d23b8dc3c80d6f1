"""The atlas manifest: one typed object, read and written here and nowhere else.

`manifest.json` is plain JSON (readable with any tool); this module is its schema. A manifest
that is not valid JSON, or lacks a field, is AtlasDamaged naming the atlas and the field, in the
words every damaged file of an atlas is reported in, never a KeyError somewhere downstream.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AtlasDamaged, UnknownAtlas
from .layout import Layout

FORMAT_VERSION = 1
FILE = "manifest.json"


class _Block(BaseModel):
    # Unknown fields are kept: a newer qkatlas may add some, an older one must not drop them.
    model_config = ConfigDict(extra="allow", frozen=True)


class ModelBlock(_Block):
    """The catalog entry the atlas was captured with, plus where its weights came from."""

    id: str
    label: str
    family: str
    modality: str
    loader: str = ""
    source: str = ""
    random: bool = False
    notes: str = ""
    weights: str = ""  # a folder, a hub id or "random init"
    revision: str = ""


class CorpusBlock(_Block):
    id: str
    modality: str  # "text" or "image"
    hash: str
    items: int
    source: str = ""


class ImageBlock(_Block):
    size: int  # input side in pixels
    patch: int  # patch side in pixels
    grid: int  # patches per side
    prefix_tokens: int  # CLS and register tokens before the patches


class LayoutState(_Block):
    method: str
    dim: int
    seed: int = 0
    complete: bool = False


class Manifest(_Block):
    format: int = FORMAT_VERSION
    atlas: str
    model: ModelBlock
    corpus: CorpusBlock
    layers: int
    heads: int
    head_dim: int
    kv_heads: int | None = Field(None, description="key/value heads (grouped-query attention); None: one per query head")
    tokens: int
    causal: bool = False
    scaling: list[float] = Field(description="the factor q·k is multiplied by before the softmax, per layer")
    image: ImageBlock | None = None
    device: str = "cpu"
    capture_seconds: float = 0.0
    created: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    seed: int = 0
    joint: str = Field("attentionviz", description="how each head's joint space was chosen (joint.JOINT_METHODS); "
                       "atlases written before the choice existed used AttentionViz's")
    stages: dict[str, str] = Field(default_factory=dict)
    reductions: dict[str, LayoutState] = Field(default_factory=dict)

    @property
    def modality(self) -> str:
        return self.corpus.modality

    @property
    def total_heads(self) -> int:
        return self.layers * self.heads

    def kv_group(self, head: int) -> int:
        """The key/value head that query head `head` shares (transformers' repeat_kv order)."""
        return head // (self.heads // (self.kv_heads or self.heads))

    def with_layout(self, layout: Layout, seed: int, complete: bool) -> "Manifest":
        """A copy that records the state of one layout."""
        state = LayoutState(method=layout.method, dim=layout.dim, seed=seed, complete=complete)
        return self.model_copy(update={"reductions": {**self.reductions, layout.key: state}})

    def with_stage(self, stage: str, state: str) -> "Manifest":
        """A copy that records the state of a stage after capture ("stats": "done")."""
        return self.model_copy(update={"stages": {**self.stages, stage: state}})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)


def manifest_path(atlas_path: Path) -> Path:
    return Path(atlas_path) / FILE


def read_manifest(atlas_path: Path, name: str | None = None) -> Manifest:
    """The manifest of the atlas folder; UnknownAtlas when there is none, AtlasDamaged when it
    cannot be read or is not a manifest.

    Messages name the atlas by `name` (default: the folder's name), never by a path: they may
    reach API clients, and a versioned atlas's folder is a version, not the atlas.
    """
    name = name or Path(atlas_path).name
    try:
        raw = manifest_path(atlas_path).read_bytes()
    except FileNotFoundError:
        raise UnknownAtlas(f"no atlas {name!r} ({FILE} missing)") from None
    except OSError as e:
        raise AtlasDamaged.file(name, FILE, e.strerror or type(e).__name__) from None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise AtlasDamaged.file(name, FILE, f"{where}: {first.get('msg')}" if where else first.get("msg")) from None


def manifest_exists(atlas_path: Path) -> bool:
    try:
        return manifest_path(atlas_path).is_file()
    except OSError:  # e.g. a name longer than the file system allows
        return False
