"""An atlas as the API serves it: the store's Atlas plus what the API derives from it, built once.

The routers and answers read an atlas only through this class. Derived arrays (float32 head
vectors, joint clouds, norms, loaded projections, the matrix of all heads) live in one LRU
shared by every atlas and bounded in bytes. Keys carry the stamps (mtime, size, count) of the
files they come from, so a projection that appears while a build runs is seen at once and
nothing "missing" is ever remembered.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from ..errors import NotFound, NotReady
from ..joint import to_joint
from ..layout import Layout
from ..manifest import ImageBlock, Manifest
from ..store import STATS_META_FILE, Atlas, projection_dir
from .lru import LRU, Sized
from .responses import etag

TOKEN_COLUMNS = ("token", "item", "position", "text", "special", "row", "col")


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
    """One open atlas: range checks with messages, and the arrays and payloads the answers send."""

    def __init__(self, atlas: Atlas, stamp, cache: LRU):
        self._atlas = atlas
        self.stamp = stamp  # the manifest's (mtime_ns, size) when opened: a rewrite reopens the atlas
        self.cache = cache

    @property
    def id(self) -> str:
        return self._atlas.id

    @property
    def manifest(self) -> Manifest:
        return self._atlas.manifest

    def scaling(self, layer: int) -> float:
        """The factor q·k is multiplied by before the softmax, for `layer`."""
        return self._atlas.scaling(layer)

    def _cached(self, name: str, *key, build: Callable, cached_only: bool = False):
        """The value built by `build`, kept in the LRU; with cached_only, None unless it is already there."""
        full = (name, self.id, self.stamp, *key)
        return self.cache.get(full) if cached_only else self.cache.get_or_build(full, build)

    # -- checks with messages naming the valid range ------------------------------------

    def check_head(self, layer: int, head: int) -> None:
        self._atlas.check_head(layer, head)

    def check_token(self, token: int) -> None:
        n = self.manifest.tokens
        if not 0 <= token < n:
            raise NotFound(f"token {token} does not exist in atlas {self.id!r}; valid tokens: 0..{n - 1}")

    def item_rows(self, item: int) -> tuple[int, int]:
        """Token rows [start, stop) of `item`."""
        n = self._atlas.items.num_rows
        if not 0 <= item < n:
            raise NotFound(f"item {item} does not exist in atlas {self.id!r}; valid items: 0..{n - 1}")
        offsets = self._atlas.item_offsets
        return int(offsets[item]), int(offsets[item + 1])

    def token_item_rows(self, token: int) -> tuple[int, int]:
        """Token rows [start, stop) of the item `token` belongs to."""
        self.check_token(token)
        return self.item_rows(int(self._atlas.token_item[token]))

    # -- grouped-query attention ------------------------------------------------------

    @property
    def kv_heads(self) -> int:
        """Key/value heads per layer: fewer than the query heads with grouped-query attention."""
        return self.manifest.kv_heads or self.manifest.heads

    def kv_group(self, layer: int, kv_head: int) -> list[int]:
        """The query heads that share key/value head `kv_head` (NotFound naming the valid range)."""
        self.check_head(layer, 0)
        n = self.kv_heads
        if not 0 <= kv_head < n:
            raise NotFound(f"key/value head {kv_head} does not exist in atlas {self.id!r}; "
                           f"valid key/value heads: 0..{n - 1}")
        return [h for h in range(self.manifest.heads) if self.manifest.kv_group(h) == kv_head]

    def kv_keys(self, layer: int, kv_head: int, cached_only: bool = False) -> np.ndarray | None:
        """float32 (tokens, head_dim): the keys of key/value head `kv_head` as the attention used them.

        The store keeps keys per query head, repeated across a group as the model repeats them,
        so they are the keys of the group's first query head (and its cached vectors).
        """
        hit = self.head_vectors(layer, self.kv_group(layer, kv_head)[0], cached_only=cached_only)
        return None if hit is None else hit[1]

    # -- per-head arrays --------------------------------------------------------------

    def head_vectors(self, layer: int, head: int, cached_only: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """(q, k), each float32 (tokens, head_dim), converted from the stored float16 once."""
        self.check_head(layer, head)
        return self._cached("qk", layer, head, cached_only=cached_only,
                            build=lambda: self._atlas.head_vectors(layer, head))

    def item_vectors(self, item: int, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, k) of one item at `layer`, each float32 (n, heads, head_dim).

        Read as the item's rows of the layer's files (a few contiguous rows), not cut from the
        cached head vectors: those would convert every token of every head to serve one item.
        """
        start, stop = self.item_rows(item)
        self.check_head(layer, 0)
        return self._cached("item_qk", item, layer, build=lambda: (
            self._atlas.queries(layer, slice(start, stop)),
            self._atlas.keys(layer, slice(start, stop))))

    def joint_transform(self, layer: int, head: int) -> tuple[np.ndarray, float]:
        """(translation (head_dim,), scale) of the head's joint space, as stored by the build."""
        return self._atlas.joint_transform(layer, head)

    def joint_agreement(self, layer: int, head: int) -> dict:
        """How the head's joint space and its raw q/k agree with attention, as stored by the build."""
        return self._atlas.joint_agreement(layer, head)

    def joint_cloud(self, layer: int, head: int) -> np.ndarray:
        """(2 * tokens, head_dim) float32: queries then keys in the joint space."""
        return self._cached("joint", layer, head,
                            build=lambda: to_joint(*self.head_vectors(layer, head), *self.joint_transform(layer, head)))

    def norms(self, layer: int, head: int, cached_only: bool = False) -> np.ndarray | None:
        """(2 * tokens,) float32: each point's norm in the joint space."""
        self.check_head(layer, head)
        return self._cached("norms", layer, head, cached_only=cached_only,
                            build=lambda: np.linalg.norm(self.joint_cloud(layer, head), axis=1).astype("<f4"))

    def projection(self, layer: int, head: int, layout: Layout,
                   cached_only: bool = False) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(coords float32 (2 * tokens, dim), file stamp); NotReady (409) until the head is done."""
        stamp = file_stamp(self._atlas.projection_path(layer, head, layout))
        key = ("proj", self.id, layer, head, layout, stamp)
        if cached_only:
            coords = self.cache.get(key) if stamp else None
            return None if coords is None else (coords, stamp)
        if stamp is None:
            self._atlas.projection(layer, head, layout)  # raises NotReady with the heads done
        return self.cache.get_or_build(
            key, lambda: np.ascontiguousarray(self._atlas.projection(layer, head, layout), dtype="<f4")), stamp

    def projection_meta(self, layer: int, head: int, layout: Layout) -> dict | None:
        stamp = file_stamp(self._atlas.projection_path(layer, head, layout))
        if stamp is None:
            return None
        return self._cached("meta", layer, head, layout, stamp,
                            build=lambda: Sized(self._atlas.projection_meta(layer, head, layout))).value

    # -- whole layouts ----------------------------------------------------------------

    def layout_stamp(self, layout: Layout) -> tuple[int, int]:
        """(heads done, folder mtime) of one layout; changes whenever a head is added or rewritten."""
        folder = file_stamp(projection_dir(self._atlas.path, layout))
        done = self._atlas.heads_done(layout)
        return (0, 0) if folder is None or done is None else (done, folder[0])

    def progress(self) -> dict[str, int]:
        """{"pca-2d": heads done, ...} for every layout started."""
        return self._atlas.progress()

    def quality(self, layout: Layout) -> dict[str, dict]:
        """{"L00H03": {"knn_recall@10": ..}, ..} for the heads done; cached until the layout changes."""
        return self._cached("quality", layout, self.layout_stamp(layout),
                            build=lambda: Sized(self._atlas.quality_table(layout))).value

    def matrix(self, layout: Layout, max_points: int, cached_only: bool = False) -> Matrix | None:
        stamp = self.layout_stamp(layout)
        return self._cached("matrix", layout, max_points, stamp, cached_only=cached_only,
                            build=lambda: self._build_matrix(layout, max_points, stamp))

    def _build_matrix(self, layout: Layout, max_points: int, stamp) -> Matrix:
        m = self.manifest
        rows = even_sample(m.tokens, max_points)
        L, H, P, dim = m.layers, m.heads, len(rows), layout.dim
        body = np.empty(4 * P + 4 * L * H * P * dim, dtype=np.uint8)
        body[: 4 * P].view("<i4")[:] = rows
        coords = body[4 * P:].view("<f4").reshape(L, H, P, dim)
        missing = 0
        for layer in range(L):
            for head in range(H):
                try:
                    coords[layer, head] = self._atlas.projection(layer, head, layout)[rows]
                except NotReady:
                    coords[layer, head] = np.nan
                    missing += 1
        return Matrix(body, P, missing, etag(self.id, self.stamp, layout.key, max_points, stamp))

    # -- images -----------------------------------------------------------------------

    def image_spec(self) -> ImageBlock:
        """The patch grid of an image atlas; NotFound for a text atlas."""
        spec = self.manifest.image
        if self.manifest.modality != "image" or spec is None:
            raise NotFound(f"atlas {self.id!r} holds {self.manifest.modality}: it has no images")
        return spec

    def image_file(self, item: int) -> tuple[Path, tuple[int, int]]:
        """(path, file stamp) of the PNG the model saw for `item`."""
        self.image_spec()
        self.item_rows(item)
        path = self._atlas.image_path(item)
        stamp = file_stamp(path)
        if stamp is None:
            raise NotFound(f"item {item} of atlas {self.id!r} has no stored image")
        return path, stamp

    def image_png(self, item: int) -> bytes:
        """The PNG bytes of image_file(item), checked to decode: AtlasDamaged (503) for a damaged file."""
        return self._atlas.image(item)

    # -- tables -----------------------------------------------------------------------

    @cached_property
    def token_text(self) -> list[str]:
        return self._atlas.tokens.column("text").to_pylist()

    def token_ref(self, token: int, side: str) -> dict:
        return {"token": int(token), "side": side, "text": self.token_text[token],
                "item": int(self._atlas.token_item[token]), "position": int(self._atlas.token_position[token])}

    def item_tokens(self, item: int) -> list[dict]:
        start, stop = self.item_rows(item)
        t = self._atlas.tokens.slice(start, stop - start).select(["token", "text", "position", "special", "row", "col"])
        return t.to_pylist()

    def tokens_table(self) -> pa.Table:
        return self._atlas.tokens.select(list(TOKEN_COLUMNS))

    def item_spans(self, item: int) -> tuple[list[int], list[int]] | None:
        """(start, end) character spans of the item's tokens in its text, or None for an atlas
        built before the token table stored them (and for images)."""
        start, stop = self.item_rows(item)
        tokens = self._atlas.tokens
        if "start" not in tokens.column_names:
            return None
        return (tokens.column("start").slice(start, stop - start).to_pylist(),
                tokens.column("end").slice(start, stop - start).to_pylist())

    def item_text(self, item: int) -> str:
        self.item_rows(item)
        return self._atlas.items.column("text")[item].as_py()

    # -- head statistics --------------------------------------------------------------

    def stats_stamp(self) -> tuple[int, int] | None:
        """stats.json's stamp (written last): None until the statistics are computed; changes when they are again."""
        return file_stamp(self._atlas.path / STATS_META_FILE) if self._atlas.has_stats_files() else None

    def stats(self) -> tuple[pa.Table, dict]:
        """(one row per head, stats.json); NotReady (409) until a build or `qkatlas stats` computes them."""
        stamp = self.stats_stamp()
        if stamp is None:
            self._atlas.stats_table()  # raises NotReady saying how to compute them
        return self._cached("stats", stamp, build=lambda: Sized(
            (self._atlas.stats_table(), self._atlas.stats_meta()), 64 * 1024)).value

    def head_stats(self, layer: int, head: int) -> dict | None:
        """One head's row of the statistics ({"kind", "label", "entropy", ...}), None before they exist."""
        self.check_head(layer, head)
        if self.stats_stamp() is None:
            return None
        table, _ = self.stats()
        row = table.slice(layer * self.manifest.heads + head, 1).to_pylist()[0]
        return {k: v for k, v in row.items() if k not in ("layer", "head", "kv_head")}

    def headmap(self) -> dict[str, np.ndarray]:
        """coords (layers * heads, 2), distance (layers * heads, layers * heads); NotReady before statistics."""
        stamp = self.stats_stamp()
        if stamp is None:
            self._atlas.stats_table()
        return self._cached("headmap", stamp, build=lambda: _sized_arrays(self._atlas.headmap())).value

    def items_table(self) -> pa.Table:
        items = self._atlas.items
        offsets = self._atlas.item_offsets
        return pa.table({"item": items.column("item"), "text": items.column("text"), "label": items.column("label"),
                         "tokens": np.diff(offsets).astype(np.int64), "offset": offsets[:-1].astype(np.int64)})

    def table_payload(self, which: str, arrow: bool) -> tuple[bytes, str]:
        """(body, etag) of the tokens or items table as JSON columns or an Arrow IPC stream."""
        source = self._atlas.path / f"{which}.parquet"
        tag = etag(self.id, which, arrow, file_stamp(source), file_stamp(self._atlas.path / "tokens.parquet"))

        def build() -> bytes:
            table = self.tokens_table() if which == "tokens" else self.items_table()
            if arrow:
                sink = io.BytesIO()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                return sink.getvalue()
            return json.dumps({"n": table.num_rows, "columns": table.to_pydict()}, ensure_ascii=False).encode()

        return self.cache.get_or_build(("table", tag), build), tag


def _sized_arrays(arrays: dict[str, np.ndarray]) -> Sized:
    """A dict of arrays in the LRU, counted by their bytes."""
    return Sized(arrays, sum(a.nbytes for a in arrays.values()))
