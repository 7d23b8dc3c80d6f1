"""The atlas store: one folder per (model, corpus), written atomically, read memory-mapped.

Layout of an atlas folder (all readable with numpy and pyarrow):

    manifest.json                      plain JSON: model, corpus, shapes, versions, stages
    tokens.parquet                     one row per token/patch: token, item, position, text,
                                       special, row, col (row/col are -1 for text); text atlases
                                       built since issue 15 also start, end: the token's characters
                                       in its item's text (-1 for special tokens)
    items.parquet                      one row per sentence/image: item, text, image, label
    images/{item:05d}.png              the exact pixels the model saw (image atlases)
    vectors/q_L{layer:02d}.npy         (tokens, heads, head_dim) queries less their per-head mean, float16
                                       (float32 where float16 would move attention by > 2.5e-4)
    vectors/k_L{layer:02d}.npy         keys, likewise
    vectors/qmean_L{layer:02d}.npy     float32 (heads, head_dim): add to q_L.. for the queries
    vectors/kmean_L{layer:02d}.npy     float32 (heads, head_dim): add to k_L.. for the keys
    joint.npz                          translation (layers, heads, head_dim), scale (layers, heads),
                                       agreement, raw_agreement (layers, heads, 2): agreement.py's
                                       measures of the joint space and of raw q/k
    projections/{method}-{dim}d/L{layer:02d}H{head:02d}.npy
                                       float32 (2 * tokens, dim): queries first, then keys
    projections/{method}-{dim}d/L{layer:02d}H{head:02d}.json
                                       method, params, quality, seconds
    knn/L{layer:02d}H{head:02d}.npz     while a build runs: the head's kNN graph that its UMAP and t-SNE
                                       layouts share (reduce/knn.py); removed when every layout is written
    induction.npy                      float32 (layers, heads): induction scores (causal models), measured
                                       at capture on repeated random tokens (stats_run.py)
    stats.parquet                      one row per head: layer, head, kv_head, kind, label, then every
                                       statistic of stats.DEFINITIONS (null where it does not apply)
    stats.json                         version, definitions, thresholds, samples, the head map's fit
    headmap.npz                        coords float32 (layers * heads, 2), distance float32
                                       (layers * heads, layers * heads); head (l, h) is row l * heads + h

A file only exists under its final name once it is complete (temp file + rename), so a
killed build never leaves a half-written file that is read as valid. A projection's .json is
written before its .npy; the .npy is the marker that the projection is done.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .agreement import AGREEMENT_MEASURES
from .errors import AtlasDamaged, NotFound, NotReady, StorageError, UnknownAtlas
from .files import atomic_path, write_json, write_npy, write_parquet, write_text
from .layout import ALL, Layout
from .manifest import Manifest, manifest_exists, manifest_path, read_manifest

# The most float16 storage may move attention on the sample write_vectors checks; a quarter of
# the 1e-3 that attention rebuilt from the store may differ from the model's by.
PROB_ERROR = 2.5e-4
TOKEN_COLUMNS = ("token", "item", "position", "text", "special", "row", "col")
ITEM_COLUMNS = ("item", "text", "image", "label")
INDUCTION_FILE, STATS_FILE, STATS_META_FILE, HEADMAP_FILE = "induction.npy", "stats.parquet", "stats.json", "headmap.npz"
_HEAD_FILE = re.compile(r"L(\d+)H(\d+)\.npy$")
REASON_CHARS = 200  # of a library's message in a damage report (cut once the server's paths are out of it)
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def atlas_id(model_id: str, corpus_id: str, limit: int | None = None) -> str:
    """Folder name of the atlas for a model on a corpus (limited to `limit` items)."""
    name = f"{model_id}__{_SLUG.sub('-', corpus_id).strip('-')}"
    return f"{name}-n{limit}" if limit else name


def head_name(layer: int, head: int) -> str:
    """ "L03H07": how a head is named in projection files and quality tables."""
    return f"L{layer:02d}H{head:02d}"


def projection_dir(atlas_path: Path, layout: Layout) -> Path:
    return Path(atlas_path) / "projections" / layout.key


def projection_file(atlas_path: Path, layer: int, head: int, layout: Layout) -> Path:
    """Where one head's layout lives (the .npy; its metadata is the same name with .json)."""
    return projection_dir(atlas_path, layout) / f"{head_name(layer, head)}.npy"


def vector_file(atlas_path: Path, side: str, layer: int) -> Path:
    """vectors/q_L03.npy, k_L03.npy (float16) and qmean_L03.npy, kmean_L03.npy (float32 (heads, head_dim))."""
    return Path(atlas_path) / "vectors" / f"{side}_L{layer:02d}.npy"


def is_projection_file(name: str) -> bool:
    return _HEAD_FILE.match(name) is not None


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

    def write_manifest(self, manifest: Manifest) -> None:
        write_text(manifest_path(self.path), manifest.to_json())

    def record_layout(self, layout: Layout, seed: int) -> Manifest:
        """Note in the manifest how far `layout` is (complete or not); returns the new manifest."""
        atlas = Atlas(self.path)
        manifest = atlas.manifest.with_layout(layout, seed, atlas.is_complete(layout))
        self.write_manifest(manifest)
        return manifest

    def write_tokens(self, tokens: pa.Table) -> None:
        write_parquet(self.path / "tokens.parquet", tokens)

    def write_items(self, items: pa.Table) -> None:
        write_parquet(self.path / "items.parquet", items)

    def write_image(self, item: int, png_bytes: bytes) -> None:
        with atomic_path(self.path / "images" / f"{item:05d}.png") as tmp:
            tmp.write_bytes(png_bytes)

    def write_vectors(self, layer: int, q: np.ndarray, k: np.ndarray, scaling: float) -> None:
        """q, k: (tokens, heads, head_dim) float32, as the attention used them; `scaling` multiplies q·k.

        Each side is stored less its per-head mean (qmean_L*.npy, kmean_L*.npy, float32), which
        the reader adds back: a head's vectors often share a large component (DINOv2 layer 3's
        keys: ~37) that would otherwise take most of float16's precision. The rest is float16,
        or float32 for a side whose float16 rounding moves attention by more than PROB_ERROR on
        a sample of tokens (sharp heads: DINOv2 layer 0 head 5 scores up to 96).
        """
        sample = np.linspace(0, len(q) - 1, min(len(q), 512)).astype(int)
        exact = {"q": q[sample].astype(np.float32), "k": k[sample].astype(np.float32)}
        for side, x in (("q", q), ("k", k)):
            mean = x.astype(np.float64).mean(axis=0)
            rest = (x - mean).astype(np.float32)
            half = rest.astype(np.float16)
            rounded = dict(exact, **{side: (half[sample].astype(np.float32) + mean).astype(np.float32)})
            moved = np.abs(_sample_attention(rounded, scaling) - _sample_attention(exact, scaling)).max(initial=0.0)
            write_npy(vector_file(self.path, f"{side}mean", layer), mean.astype(np.float32))
            write_npy(vector_file(self.path, side, layer), rest if moved > PROB_ERROR else half)

    def write_joint(self, translation: np.ndarray, scale: np.ndarray, agreement: np.ndarray | None = None,
                    raw_agreement: np.ndarray | None = None) -> None:
        """translation: (layers, heads, head_dim); scale: (layers, heads); agreement, raw_agreement:
        (layers, heads, 2) how the joint space and raw q/k agree with attention (joint.JointLayer)."""
        arrays = {"translation": translation, "scale": scale, "agreement": agreement, "raw_agreement": raw_agreement}
        with atomic_path(self.path / "joint.npz") as tmp:
            with tmp.open("wb") as f:
                np.savez(f, **{k: v.astype(np.float32) for k, v in arrays.items() if v is not None})

    def has_projection(self, layer: int, head: int, layout: Layout) -> bool:
        return projection_file(self.path, layer, head, layout).exists()

    def write_projection(self, layer: int, head: int, layout: Layout, coords: np.ndarray, meta: dict) -> None:
        """coords: (2 * tokens, dim) float32, queries first then keys. The .json goes first: the
        .npy is the marker that the head is done."""
        npy = projection_file(self.path, layer, head, layout)
        write_json(npy.with_suffix(".json"),
                   {"method": layout.method, "dim": layout.dim, "layer": layer, "head": head, **meta})
        write_npy(npy, coords.astype(np.float32, copy=False))

    def write_induction(self, scores: np.ndarray) -> None:
        """scores: (layers, heads), the induction probe's (causal models)."""
        write_npy(self.path / INDUCTION_FILE, scores.astype(np.float32))

    def write_stats(self, table: pa.Table, meta: dict, coords: np.ndarray, distance: np.ndarray) -> Manifest:
        """Every head's statistics (`table`, one row per head), their description (`meta`) and the map
        of heads; stats.json last, as the marker that they are complete and of which version (a
        rewrite killed half-way leaves the older version's stats.json, so it is done again). Returns
        the new manifest."""
        with atomic_path(self.path / HEADMAP_FILE) as tmp:
            with tmp.open("wb") as f:
                np.savez(f, coords=coords.astype(np.float32), distance=distance.astype(np.float32))
        write_parquet(self.path / STATS_FILE, table)
        write_json(self.path / STATS_META_FILE, meta)
        manifest = Atlas(self.path).manifest.with_stage("stats", "done")
        self.write_manifest(manifest)
        return manifest


# ---------------------------------------------------------------------------------------
# reader


class Atlas:
    """Read-only view of an atlas folder: the one reader of the store.

    Files are read whole, never memory-mapped: a file truncated in place under a mapping kills
    the process (SIGBUS), a file read whole is at worst damaged. Any unreadable or inconsistent
    file raises AtlasDamaged naming it, so that atlas reports itself damaged and others serve.
    """

    def __init__(self, path: Path):
        # The live version, resolved once: a rebuild that switches `<data_dir>/<atlas>` to a new
        # version (versions.py) never mixes its files into what this reader serves.
        self.path = Path(path).resolve()
        self.manifest: Manifest = read_manifest(self.path, Path(path).name)
        self._layer: tuple[int, dict[str, np.ndarray]] | None = None  # the last layer read: heads are read in layer order

    @property
    def id(self) -> str:
        return self.manifest.atlas or self.path.name

    @property
    def layers(self) -> int:
        return self.manifest.layers

    @property
    def heads(self) -> int:
        return self.manifest.heads

    @property
    def head_dim(self) -> int:
        return self.manifest.head_dim

    @property
    def n_tokens(self) -> int:
        return self.manifest.tokens

    @property
    def modality(self) -> str:
        return self.manifest.modality

    @property
    def causal(self) -> bool:
        return self.manifest.causal

    @property
    def total_heads(self) -> int:
        return self.manifest.total_heads

    def check_head(self, layer: int, head: int) -> None:
        if not 0 <= layer < self.layers:
            raise NotFound(f"layer {layer} does not exist in atlas {self.id!r}; valid layers: 0..{self.layers - 1}")
        if not 0 <= head < self.heads:
            raise NotFound(f"head {head} does not exist in atlas {self.id!r}; valid heads: 0..{self.heads - 1}")

    def scaling(self, layer: int) -> float:
        """The factor the model multiplies q·k by before the softmax, for `layer`."""
        return float(self.manifest.scaling[layer])

    # -- reading, with damage reported --------------------------------------------------

    def damaged(self, path: Path, reason: str) -> AtlasDamaged:
        name = str(path.relative_to(self.path))
        reason = reason.replace(str(path), name)  # libraries quote the full path: it may reach API clients
        return AtlasDamaged.file(self.id, name, reason[:REASON_CHARS])

    def _read(self, path: Path, read, shape: tuple | None = None):
        """read(path), or AtlasDamaged naming the file; `shape` checks an array's shape."""
        try:
            value = read(path)
        except FileNotFoundError:
            raise self.damaged(path, "missing") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, pa.ArrowException) as e:
            raise self.damaged(path, _reason(e)) from None
        if shape is not None and value.shape != shape:
            raise self.damaged(path, f"shape {value.shape}, expected {shape}")
        return value

    def _table(self, name: str, columns: tuple[str, ...]) -> pa.Table:
        table = self._read(self.path / name, pq.read_table)
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise self.damaged(self.path / name, f"no column {missing[0]!r}")
        return table

    @cached_property
    def tokens(self) -> pa.Table:
        table = self._table("tokens.parquet", TOKEN_COLUMNS)
        if table.num_rows != self.n_tokens:
            raise self.damaged(self.path / "tokens.parquet", f"{table.num_rows} rows, the manifest says {self.n_tokens}")
        return table

    @cached_property
    def items(self) -> pa.Table:
        return self._table("items.parquet", ITEM_COLUMNS)

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

    def _vectors(self, layer: int) -> dict[str, np.ndarray]:
        """{"q", "k": float16 or float32 (tokens, heads, head_dim), "qmean", "kmean": float32 (heads, head_dim)}:
        the vectors are q + qmean, k + kmean."""
        if self._layer is None or self._layer[0] != layer:
            shape = (self.n_tokens, self.heads, self.head_dim)
            arrays = {side: self._read(vector_file(self.path, side, layer), _load, shape) for side in ("q", "k")}
            for side in ("qmean", "kmean"):
                path = vector_file(self.path, side, layer)
                # atlases written before vectors were centred have no offsets: their vectors are whole
                arrays[side] = self._read(path, _load, shape[1:]) if path.exists() else np.zeros(shape[1:], np.float32)
            self._layer = (layer, arrays)
        return self._layer[1]

    def queries(self, layer: int, rows: slice = slice(None)) -> np.ndarray:
        """float32 (rows, heads, head_dim): the queries as the attention used them."""
        v = self._vectors(layer)
        return v["q"][rows].astype(np.float32) + v["qmean"]

    def keys(self, layer: int, rows: slice = slice(None)) -> np.ndarray:
        """float32 (rows, heads, head_dim): the keys as the attention used them."""
        v = self._vectors(layer)
        return v["k"][rows].astype(np.float32) + v["kmean"]

    def head_vectors(self, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, k) of one head as float32, each (tokens, head_dim)."""
        self.check_head(layer, head)
        v = self._vectors(layer)
        return (v["q"][:, head].astype(np.float32) + v["qmean"][head],
                v["k"][:, head].astype(np.float32) + v["kmean"][head])

    @cached_property
    def joint(self) -> dict[str, np.ndarray]:
        """translation (layers, heads, head_dim), scale (layers, heads); agreement, raw_agreement
        (layers, heads, 2) where stored (atlases built before they were measured have none)."""
        def read(path):
            with _load(path) as z:
                return {"translation": z["translation"], "scale": z["scale"],
                        **{name: z[name] for name in ("agreement", "raw_agreement") if name in z}}

        joint = self._read(self.path / "joint.npz", read)
        if joint["scale"].shape != (self.layers, self.heads):
            raise self.damaged(self.path / "joint.npz", f"scale has shape {joint['scale'].shape}")
        return joint

    def joint_transform(self, layer: int, head: int) -> tuple[np.ndarray, float]:
        """(translation (head_dim,), scale) of one head's joint space."""
        self.check_head(layer, head)
        return self.joint["translation"][layer, head], float(self.joint["scale"][layer, head])

    def joint_agreement(self, layer: int, head: int) -> dict:
        """{"joint": ..., "raw": ...}: how the head's joint space and its raw q/k agree with attention,
        each {"attention_agreement", "distance_dot_pearson"} (agreement.py), a measure left out
        where it is undefined; {} for atlases built before it was measured."""
        self.check_head(layer, head)
        out = {}
        for key, name in (("joint", "agreement"), ("raw", "raw_agreement")):
            if name in self.joint:
                values = self.joint[name][layer, head]
                out[key] = {m: round(float(v), 4) for m, v in zip(AGREEMENT_MEASURES, values) if np.isfinite(v)}
        return out

    # -- layouts ------------------------------------------------------------------------

    def projection_path(self, layer: int, head: int, layout: Layout) -> Path:
        self.check_head(layer, head)
        return projection_file(self.path, layer, head, layout)

    def has_projection(self, layer: int, head: int, layout: Layout) -> bool:
        return self.projection_path(layer, head, layout).exists()

    def heads_done(self, layout: Layout) -> int | None:
        """How many heads `layout` has written, or None when it was never started."""
        try:
            return sum(1 for e in projection_dir(self.path, layout).iterdir() if is_projection_file(e.name))
        except FileNotFoundError:
            return None

    def progress(self) -> dict[str, int]:
        """{"pca-2d": heads done, ...} for every layout started."""
        done = {layout.key: self.heads_done(layout) for layout in ALL}
        return {key: n for key, n in done.items() if n is not None}

    def is_complete(self, layout: Layout) -> bool:
        return self.heads_done(layout) == self.total_heads

    def projection(self, layer: int, head: int, layout: Layout) -> np.ndarray:
        """(2 * tokens, dim) float32: queries first, then keys. NotReady until the head is done."""
        path = self.projection_path(layer, head, layout)
        if not path.exists():
            raise NotReady(f"{layout.method} {layout.dim}-D of layer {layer} head {head} in atlas {self.id!r} "
                           f"is not computed yet; heads done: {self.heads_done(layout) or 0} of {self.total_heads}")
        return self._read(path, _load, (2 * self.n_tokens, layout.dim))

    def projection_meta(self, layer: int, head: int, layout: Layout) -> dict | None:
        """params, seconds, points, quality (and placement data) of one head's layout; None if not done."""
        path = self.projection_path(layer, head, layout)
        if not path.exists():
            return None
        return self._read(path.with_suffix(".json"), _read_json)

    def quality_table(self, layout: Layout) -> dict[str, dict]:
        """{"L00H03": {"knn_recall@10": ...}, ...} for the heads whose layout is done."""
        out = {}
        folder = projection_dir(self.path, layout)
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if is_projection_file(p.name):
                    out[p.stem] = self._read(p.with_suffix(".json"), _read_json).get("quality", {})
        return out

    def image_path(self, item: int) -> Path:
        return self.path / "images" / f"{item:05d}.png"

    def image(self, item: int) -> bytes:
        """The PNG the model saw for `item`, once it is known to decode (AtlasDamaged otherwise)."""
        return self._read(self.image_path(item), _read_png)

    # -- head statistics ----------------------------------------------------------------

    def induction(self) -> np.ndarray | None:
        """float32 (layers, heads) induction scores, or None when they were never measured."""
        path = self.path / INDUCTION_FILE
        return self._read(path, np.load, (self.layers, self.heads)) if path.exists() else None

    def has_stats_files(self) -> bool:
        """Whether stats.parquet and stats.json (written last) are both there."""
        return (self.path / STATS_FILE).exists() and (self.path / STATS_META_FILE).exists()

    def stats_meta(self) -> dict | None:
        """stats.json (version, definitions, thresholds, samples, map fit); None before statistics exist."""
        return self._read(self.path / STATS_META_FILE, _read_json) if self.has_stats_files() else None

    def has_stats(self, version: int) -> bool:
        """Whether statistics of definition version `version` are stored."""
        meta = self.stats_meta()
        return meta is not None and meta.get("version") == version

    def stats_table(self) -> pa.Table:
        """One row per head (stats.parquet); NotReady (409) until the statistics are computed."""
        path = self.path / STATS_FILE
        if not self.has_stats_files():
            raise NotReady(f"head statistics of atlas {self.id!r} are not computed yet; "
                           f"run `qkatlas stats {self.id}` (a build computes them after its layouts)")
        table = self._table(STATS_FILE, ("layer", "head", "kind", "label"))
        if table.num_rows != self.total_heads:
            raise self.damaged(path, f"{table.num_rows} rows, the atlas has {self.total_heads} heads")
        return table

    def headmap(self) -> dict[str, np.ndarray]:
        """coords (layers * heads, 2), distance (layers * heads, layers * heads); NotReady before statistics."""
        self.stats_table()

        def read(path):
            with np.load(path) as z:
                return {"coords": z["coords"], "distance": z["distance"]}

        n = self.total_heads
        out = self._read(self.path / HEADMAP_FILE, read)
        if out["coords"].shape != (n, 2) or out["distance"].shape != (n, n):
            raise self.damaged(self.path / HEADMAP_FILE, f"shapes {out['coords'].shape}, {out['distance'].shape}")
        return out


def _sample_attention(vectors: dict[str, np.ndarray], scaling: float) -> np.ndarray:
    """softmax(q·kᵀ × scaling) over sampled tokens, every head: (heads, sample, sample)."""
    scores = np.einsum("ihd,jhd->hij", vectors["q"], vectors["k"]).astype(np.float64) * scaling
    scores -= scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def _load(path: Path):
    """np.load of a .npy or .npz file; ValueError for any other (np.load would take it for a pickle
    and, in its message, advise unpickling it)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise ValueError("not a numpy file: no .npy or .npz header")
    return np.load(path)


def _read_png(path: Path) -> bytes:
    from PIL import Image

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            img.load()
    except (OSError, SyntaxError) as e:  # SyntaxError: PIL's word for some broken PNGs
        raise ValueError(f"not a readable PNG image: {type(e).__name__}") from None
    return data


def _read_json(path: Path) -> dict:
    value = json.loads(path.read_bytes())
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _reason(e: Exception) -> str:
    """A short reason for people, without the server paths some exceptions carry."""
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return (str(e).splitlines() or [type(e).__name__])[0]


def list_atlases(data_dir: Path) -> list[Path]:
    """`<data_dir>/<atlas>` of every atlas with a manifest (names starting with "." are ours: versions, status)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.iterdir() if not p.name.startswith(".") and manifest_exists(p))


def open_atlas(data_dir: Path, name: str) -> Atlas:
    path = Path(data_dir) / name
    if "/" in name or name.startswith(".") or not manifest_exists(path):
        known = ", ".join(p.name for p in list_atlases(data_dir)) or "none"
        raise UnknownAtlas(f"unknown atlas {name!r}; available atlases: {known}")
    return Atlas(path)
