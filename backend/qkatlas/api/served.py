"""An atlas as the API serves it: the store's Atlas plus what the API derives from it, built once.

Derived arrays (float32 head vectors, joint clouds, norms, loaded projections, the matrix of
all heads) live in one LRU shared by every atlas and bounded in bytes. Keys carry the stamps
(mtime, size, count) of the files they come from, so a projection that appears while a build
runs is seen at once and nothing "missing" is ever remembered.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from ..errors import NotFound
from ..joint import to_joint
from ..layout import ALL, Layout
from ..store import Atlas, is_projection_file, projection_dir
from .responses import etag

TOKEN_COLUMNS = ("token", "item", "position", "text", "special", "row", "col")


class LRU:
    """A thread-safe least-recently-used cache bounded by the bytes of what it holds.

    `build` runs outside the lock: two threads may build the same value once each, which is
    harmless, and a slow build never blocks readers of other keys.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key):
        """The value under `key`, or None."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def get_or_build(self, key, build: Callable):
        value = self.get(key)
        if value is not None:
            return value
        value = build()
        size = _nbytes(value)
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._sizes[key] = size
                self._total += size
            while self._total > self.max_bytes and len(self._items) > 1:
                old, _ = self._items.popitem(last=False)
                self._total -= self._sizes.pop(old)
        return value


def _nbytes(value) -> int:
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return int(getattr(value, "nbytes", 0))


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, or None when it does not exist (or the name is not a valid path)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size


def even_sample(n_tokens: int, max_points: int) -> np.ndarray:
    """int32 (P,) rows of a head's points: an even sample of at most max_points // 2 tokens (at
    least one), each with its query row then, after all queries, its key row."""
    m = min(n_tokens, max(1, max_points // 2))
    tokens = (np.arange(m, dtype=np.int64) * n_tokens) // m
    return np.concatenate([tokens, tokens + n_tokens]).astype("<i4")


@dataclass(frozen=True)
class Matrix:
    """The matrix response: int32 rows (P,) then float32 (layers, heads, P, dim), little-endian."""

    body: np.ndarray  # uint8 bytes of the whole response
    points: int
    missing: int
    etag: str

    @property
    def nbytes(self) -> int:
        return self.body.nbytes


class ServedAtlas:
    """One open atlas: range checks with messages, and the arrays and payloads the routers send."""

    def __init__(self, atlas: Atlas, stamp, cache: LRU):
        self.atlas = atlas
        self.stamp = stamp  # the manifest's (mtime_ns, size) when opened: a rewrite reopens the atlas
        self.cache = cache

    @property
    def id(self) -> str:
        return self.atlas.id

    def _cached(self, name: str, *key, build: Callable, cached_only: bool = False):
        """The value built by `build`, kept in the LRU; with cached_only, None unless it is already there."""
        full = (name, self.id, self.stamp, *key)
        return self.cache.get(full) if cached_only else self.cache.get_or_build(full, build)

    # -- checks with messages naming the valid range ------------------------------------

    def check_token(self, token: int) -> None:
        n = self.atlas.n_tokens
        if not 0 <= token < n:
            raise NotFound(f"token {token} does not exist in atlas {self.id!r}; valid tokens: 0..{n - 1}")

    def item_rows(self, item: int) -> tuple[int, int]:
        """Token rows [start, stop) of `item`."""
        n = self.atlas.items.num_rows
        if not 0 <= item < n:
            raise NotFound(f"item {item} does not exist in atlas {self.id!r}; valid items: 0..{n - 1}")
        offsets = self.atlas.item_offsets
        return int(offsets[item]), int(offsets[item + 1])

    # -- per-head arrays --------------------------------------------------------------

    def head_vectors(self, layer: int, head: int, cached_only: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """(q, k), each float32 (tokens, head_dim), converted from the stored float16 once."""
        self.atlas.check_head(layer, head)
        return self._cached("qk", layer, head, cached_only=cached_only,
                            build=lambda: self.atlas.head_vectors(layer, head))

    def joint_transform(self, layer: int, head: int) -> tuple[np.ndarray, float]:
        """(translation (head_dim,), scale) of the head's joint space, as stored by the build."""
        return self.atlas.joint_transform(layer, head)

    def joint_cloud(self, layer: int, head: int) -> np.ndarray:
        """(2 * tokens, head_dim) float32: queries then keys in the joint space."""
        return self._cached("joint", layer, head,
                            build=lambda: to_joint(*self.head_vectors(layer, head), *self.joint_transform(layer, head)))

    def norms(self, layer: int, head: int, cached_only: bool = False) -> np.ndarray | None:
        """(2 * tokens,) float32: each point's norm in the joint space."""
        self.atlas.check_head(layer, head)
        return self._cached("norms", layer, head, cached_only=cached_only,
                            build=lambda: np.linalg.norm(self.joint_cloud(layer, head), axis=1).astype("<f4"))

    def projection(self, layer: int, head: int, layout: Layout,
                   cached_only: bool = False) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(coords float32 (2 * tokens, dim), file stamp); NotReady (409) until the head is done."""
        stamp = file_stamp(self.atlas.projection_path(layer, head, layout))
        key = ("proj", self.id, layer, head, layout, stamp)
        if cached_only:
            coords = self.cache.get(key) if stamp else None
            return None if coords is None else (coords, stamp)
        if stamp is None:
            self.atlas.projection(layer, head, layout)  # raises NotReady with the heads done
        return self.cache.get_or_build(
            key, lambda: np.ascontiguousarray(self.atlas.projection(layer, head, layout), dtype="<f4")), stamp

    def projection_meta(self, layer: int, head: int, layout: Layout) -> dict | None:
        stamp = file_stamp(self.atlas.projection_path(layer, head, layout))
        if stamp is None:
            return None
        return self._cached("meta", layer, head, layout, stamp,
                            build=lambda: _Sized(self.atlas.projection_meta(layer, head, layout))).value

    # -- whole layouts ----------------------------------------------------------------

    @property
    def total_heads(self) -> int:
        return self.atlas.total_heads

    def layout_stamp(self, layout: Layout) -> tuple[int, int]:
        """(heads done, folder mtime) of one layout; changes whenever a head is added or rewritten."""
        folder = projection_dir(self.atlas.path, layout)
        try:
            mtime = folder.stat().st_mtime_ns
            count = sum(1 for e in os.scandir(folder) if is_projection_file(e.name))
        except FileNotFoundError:
            return 0, 0
        return count, mtime

    def layouts(self) -> dict[str, int]:
        """{"pca-2d": heads done, ...} for every layout started."""
        out = {}
        for layout in ALL:
            count, mtime = self.layout_stamp(layout)
            if mtime:
                out[layout.key] = count
        return out

    def quality(self, layout: Layout) -> dict[str, dict]:
        """{"L00H03": {"knn_recall@10": ..}, ..} for the heads done; cached until the layout changes."""
        return self._cached("quality", layout, self.layout_stamp(layout),
                            build=lambda: _Sized(self.atlas.quality_table(layout))).value

    def matrix(self, layout: Layout, max_points: int, cached_only: bool = False) -> Matrix | None:
        stamp = self.layout_stamp(layout)
        return self._cached("matrix", layout, max_points, stamp, cached_only=cached_only,
                            build=lambda: self._build_matrix(layout, max_points, stamp))

    def _build_matrix(self, layout: Layout, max_points: int, stamp) -> Matrix:
        rows = even_sample(self.atlas.n_tokens, max_points)
        L, H, P, dim = self.atlas.layers, self.atlas.heads, len(rows), layout.dim
        body = np.empty(4 * P + 4 * L * H * P * dim, dtype=np.uint8)
        body[: 4 * P].view("<i4")[:] = rows
        coords = body[4 * P:].view("<f4").reshape(L, H, P, dim)
        missing = 0
        for layer in range(L):
            for head in range(H):
                path = self.atlas.projection_path(layer, head, layout)
                try:
                    coords[layer, head] = np.load(path, mmap_mode="r")[rows]
                except FileNotFoundError:
                    coords[layer, head] = np.nan
                    missing += 1
        return Matrix(body, P, missing, etag(self.id, self.stamp, layout.key, max_points, stamp))

    # -- tables -----------------------------------------------------------------------

    @cached_property
    def token_text(self) -> list[str]:
        return self.atlas.tokens.column("text").to_pylist()

    def token_ref(self, token: int, side: str) -> dict:
        return {"token": int(token), "side": side, "text": self.token_text[token],
                "item": int(self.atlas.token_item[token]), "position": int(self.atlas.token_position[token])}

    def item_tokens(self, start: int, stop: int) -> list[dict]:
        t = self.atlas.tokens.slice(start, stop - start).select(["token", "text", "position", "special", "row", "col"])
        return t.to_pylist()

    def tokens_table(self) -> pa.Table:
        return self.atlas.tokens.select(list(TOKEN_COLUMNS))

    def items_table(self) -> pa.Table:
        items = self.atlas.items
        offsets = self.atlas.item_offsets
        return pa.table({"item": items.column("item"), "text": items.column("text"), "label": items.column("label"),
                         "tokens": np.diff(offsets).astype(np.int64), "offset": offsets[:-1].astype(np.int64)})

    def table_payload(self, which: str, arrow: bool) -> tuple[bytes, str]:
        """(body, etag) of the tokens or items table as JSON columns or an Arrow IPC stream."""
        source = self.atlas.path / f"{which}.parquet"
        tag = etag(self.id, which, arrow, file_stamp(source), file_stamp(self.atlas.path / "tokens.parquet"))

        def build() -> bytes:
            table = self.tokens_table() if which == "tokens" else self.items_table()
            if arrow:
                sink = io.BytesIO()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                return sink.getvalue()
            return json.dumps({"n": table.num_rows, "columns": table.to_pydict()}, ensure_ascii=False).encode()

        return self.cache.get_or_build(("table", tag), build), tag


@dataclass(frozen=True)
class _Sized:
    """A small non-array value in the LRU (counted as a kilobyte)."""

    value: object
    nbytes: int = 1024
