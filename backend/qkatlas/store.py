"""The atlas store: one folder per (model, corpus), written atomically, read memory-mapped.

Layout of an atlas folder (all readable with numpy and pyarrow):

    manifest.json                      plain JSON: model, corpus, shapes, versions, stages
    tokens.parquet                     one row per token/patch: token, item, position, text,
                                       special, row, col (row/col are -1 for text)
    items.parquet                      one row per sentence/image: item, text, image, label
    images/{item:05d}.png              the exact pixels the model saw (image atlases)
    vectors/q_L{layer:02d}.npy         float16 (tokens, heads, head_dim), as the attention used them
    vectors/k_L{layer:02d}.npy         float16 (tokens, heads, head_dim)
    joint.npz                          translation (layers, heads, head_dim), scale (layers, heads)
    projections/{method}-{dim}d/L{layer:02d}H{head:02d}.npy
                                       float32 (2 * tokens, dim): queries first, then keys
    projections/{method}-{dim}d/L{layer:02d}H{head:02d}.json
                                       method, params, quality, seconds

A file only exists under its final name once it is complete (temp file + rename), so a
killed build never leaves a half-written file that is read as valid. A projection's .json is
written before its .npy; the .npy is the marker that the projection is done.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import NotFound, NotReady, StorageError, UnknownAtlas

FORMAT_VERSION = 1
METHODS = ("pca", "umap", "tsne")
DIMS = (2, 3)
_PROJ_FILE = re.compile(r"L(\d+)H(\d+)\.npy$")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def atlas_id(model_id: str, corpus_id: str, limit: int | None = None) -> str:
    """Folder name of the atlas for a model on a corpus (limited to `limit` items)."""
    name = f"{model_id}__{_SLUG.sub('-', corpus_id).strip('-')}"
    return f"{name}-n{limit}" if limit else name


def projection_key(method: str, dim: int) -> str:
    return f"{method}-{dim}d"


def projection_file(atlas_path: Path, layer: int, head: int, method: str, dim: int) -> Path:
    """Where one head's layout lives (the .npy; its metadata is the same name with .json)."""
    return Path(atlas_path) / "projections" / projection_key(method, dim) / f"L{layer:02d}H{head:02d}.npy"


# ---------------------------------------------------------------------------------------
# atomic writes


@contextmanager
def atomic_path(path: Path):
    """Yield a temp path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))


def write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("wb") as f:
            np.save(f, np.ascontiguousarray(array))


def write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def ensure_writable(folder: Path) -> None:
    """Fail early, with a clear message, when the data dir cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", delete=True)
        probe.close()
    except OSError as e:
        raise StorageError(f"data dir {str(folder)!r} is not writable: {e.strerror or e}") from None


# ---------------------------------------------------------------------------------------
# writer


class AtlasWriter:
    """Writes the parts of one atlas folder; every method is atomic and idempotent."""

    def __init__(self, path: Path):
        self.path = Path(path)
        ensure_writable(self.path)

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.path / "manifest.json", {"format": FORMAT_VERSION, **manifest})

    def update_manifest(self, **changes) -> dict:
        manifest = read_manifest(self.path) if (self.path / "manifest.json").exists() else {}
        manifest.update(changes)
        self.write_manifest(manifest)
        return manifest

    def write_tokens(self, tokens: pa.Table) -> None:
        write_parquet(self.path / "tokens.parquet", tokens)

    def write_items(self, items: pa.Table) -> None:
        write_parquet(self.path / "items.parquet", items)

    def write_image(self, item: int, png_bytes: bytes) -> None:
        with atomic_path(self.path / "images" / f"{item:05d}.png") as tmp:
            tmp.write_bytes(png_bytes)

    def write_vectors(self, layer: int, q: np.ndarray, k: np.ndarray) -> None:
        """q, k: (tokens, heads, head_dim), stored as float16."""
        write_npy(self.path / "vectors" / f"q_L{layer:02d}.npy", q.astype(np.float16, copy=False))
        write_npy(self.path / "vectors" / f"k_L{layer:02d}.npy", k.astype(np.float16, copy=False))

    def write_joint(self, translation: np.ndarray, scale: np.ndarray) -> None:
        """translation: (layers, heads, head_dim); scale: (layers, heads)."""
        with atomic_path(self.path / "joint.npz") as tmp:
            with tmp.open("wb") as f:
                np.savez(f, translation=translation.astype(np.float32), scale=scale.astype(np.float32))

    def projection_path(self, layer: int, head: int, method: str, dim: int) -> Path:
        return projection_file(self.path, layer, head, method, dim)

    def has_projection(self, layer: int, head: int, method: str, dim: int) -> bool:
        return self.projection_path(layer, head, method, dim).exists()

    def write_projection(self, layer: int, head: int, method: str, dim: int, coords: np.ndarray, meta: dict) -> None:
        """coords: (2 * tokens, dim) float32, queries first then keys."""
        npy = self.projection_path(layer, head, method, dim)
        write_json(npy.with_suffix(".json"), {"method": method, "dim": dim, "layer": layer, "head": head, **meta})
        write_npy(npy, coords.astype(np.float32, copy=False))

    def update_projection_meta(self, layer: int, head: int, method: str, dim: int, meta: dict) -> None:
        write_json(self.projection_path(layer, head, method, dim).with_suffix(".json"), meta)


# ---------------------------------------------------------------------------------------
# reader


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "manifest.json").read_text())
    except FileNotFoundError:
        raise UnknownAtlas(f"no atlas at {str(path)!r} (manifest.json missing)") from None
    except json.JSONDecodeError as e:
        raise StorageError(f"atlas manifest {str(path)!r} is not valid JSON: {e}") from None


class Atlas:
    """Read-only view of an atlas folder. Arrays are memory-mapped and loaded lazily, once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self._vectors: dict[tuple[str, int], np.ndarray] = {}
        self._projections: dict[tuple[int, int, str, int], np.ndarray] = {}

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def layers(self) -> int:
        return int(self.manifest["layers"])

    @property
    def heads(self) -> int:
        return int(self.manifest["heads"])

    @property
    def head_dim(self) -> int:
        return int(self.manifest["head_dim"])

    @property
    def n_tokens(self) -> int:
        return int(self.manifest["tokens"])

    @property
    def modality(self) -> str:
        return self.manifest["corpus"]["modality"]

    @property
    def causal(self) -> bool:
        return bool(self.manifest.get("causal", False))

    def check_head(self, layer: int, head: int) -> None:
        if not 0 <= layer < self.layers:
            raise NotFound(f"layer {layer} does not exist in atlas {self.id!r}; valid layers: 0..{self.layers - 1}")
        if not 0 <= head < self.heads:
            raise NotFound(f"head {head} does not exist in atlas {self.id!r}; valid heads: 0..{self.heads - 1}")

    def scaling(self, layer: int) -> float:
        """The factor the model multiplies q·k by before the softmax, for `layer`."""
        return float(self.manifest["scaling"][layer])

    @cached_property
    def tokens(self) -> pa.Table:
        return pq.read_table(self.path / "tokens.parquet", memory_map=True)

    @cached_property
    def items(self) -> pa.Table:
        return pq.read_table(self.path / "items.parquet", memory_map=True)

    @cached_property
    def token_item(self) -> np.ndarray:
        """(tokens,) int: which item each token belongs to."""
        return self.tokens.column("item").to_numpy()

    @cached_property
    def token_position(self) -> np.ndarray:
        return self.tokens.column("position").to_numpy()

    @cached_property
    def item_offsets(self) -> np.ndarray:
        """(items + 1,): tokens of item i are rows offsets[i]:offsets[i+1] (tokens are stored item by item)."""
        counts = np.bincount(self.token_item, minlength=self.items.num_rows)
        return np.concatenate([[0], np.cumsum(counts)])

    def _vector(self, side: str, layer: int) -> np.ndarray:
        key = (side, layer)
        if key not in self._vectors:
            self._vectors[key] = np.load(self.path / "vectors" / f"{side}_L{layer:02d}.npy", mmap_mode="r")
        return self._vectors[key]

    def queries(self, layer: int) -> np.ndarray:
        """(tokens, heads, head_dim) float16, memory-mapped."""
        return self._vector("q", layer)

    def keys(self, layer: int) -> np.ndarray:
        return self._vector("k", layer)

    def head_vectors(self, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, k) of one head as float32, each (tokens, head_dim)."""
        self.check_head(layer, head)
        return (
            np.asarray(self.queries(layer)[:, head, :], dtype=np.float32),
            np.asarray(self.keys(layer)[:, head, :], dtype=np.float32),
        )

    @cached_property
    def joint(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "joint.npz") as z:
            return {"translation": z["translation"], "scale": z["scale"]}

    def projection_dir(self, method: str, dim: int) -> Path:
        return self.path / "projections" / projection_key(method, dim)

    def projection_path(self, layer: int, head: int, method: str, dim: int) -> Path:
        return projection_file(self.path, layer, head, method, dim)

    def has_projection(self, layer: int, head: int, method: str, dim: int) -> bool:
        return self.projection_path(layer, head, method, dim).exists()

    def available_projections(self) -> dict[str, int]:
        """{"pca-2d": number of heads done, ...} for every (method, dim) started."""
        out = {}
        for method in METHODS:
            for dim in DIMS:
                folder = self.projection_dir(method, dim)
                if folder.is_dir():
                    out[projection_key(method, dim)] = sum(1 for p in folder.iterdir() if _PROJ_FILE.match(p.name))
        return out

    def is_projection_complete(self, method: str, dim: int) -> bool:
        return self.available_projections().get(projection_key(method, dim), 0) == self.layers * self.heads

    def projection(self, layer: int, head: int, method: str, dim: int) -> np.ndarray:
        """(2 * tokens, dim) float32 memory-mapped: queries first, then keys."""
        self.check_head(layer, head)
        check_method(method, dim)
        key = (layer, head, method, dim)
        if key not in self._projections:
            path = self.projection_path(layer, head, method, dim)
            if not path.exists():
                raise NotReady(f"{method} {dim}-D for layer {layer} head {head} of atlas {self.id!r} is not computed yet")
            self._projections[key] = np.load(path, mmap_mode="r")
        return self._projections[key]

    def projection_meta(self, layer: int, head: int, method: str, dim: int) -> dict:
        self.projection(layer, head, method, dim)
        path = self.projection_path(layer, head, method, dim).with_suffix(".json")
        return json.loads(path.read_text())

    def quality_table(self, method: str, dim: int) -> dict[str, float]:
        """{"L00H03": score, ...} for the heads whose projection is done."""
        out = {}
        folder = self.projection_dir(method, dim)
        if folder.is_dir():
            for p in sorted(folder.glob("L*H*.npy")):
                meta = json.loads(p.with_suffix(".json").read_text())
                out[p.stem] = meta.get("quality", {})
        return out

    def image_path(self, item: int) -> Path:
        return self.path / "images" / f"{item:05d}.png"


def check_method(method: str, dim: int) -> None:
    if method not in METHODS:
        raise NotFound(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if dim not in DIMS:
        raise NotFound(f"unknown dim {dim}; valid dims: {', '.join(map(str, DIMS))}")


def list_atlases(data_dir: Path) -> list[Path]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.iterdir() if (p / "manifest.json").is_file())


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def open_atlas(data_dir: Path, name: str) -> Atlas:
    path = Path(data_dir) / name
    if "/" in name or name.startswith(".") or not _is_file(path / "manifest.json"):
        known = ", ".join(p.name for p in list_atlases(data_dir)) or "none"
        raise UnknownAtlas(f"unknown atlas {name!r}; available atlases: {known}")
    return Atlas(path)
