"""The statistics stage: every head's statistics, label and place on the map of heads, from a
stored atlas into its folder (stats.parquet, stats.json, headmap.npz).

Everything comes from the stored q/k except induction, which needs its own input through the
model: the build measures it at capture, while the model is loaded (`measure_induction`); an
atlas captured before that loads its model here once (`ensure_induction`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import headmap, stats
from .item_attention import item_attention
from .progress import Reporter, Silent
from .settings import Settings
from .store import Atlas, AtlasWriter

# Attention entries (Σ n² over items) the statistics read per head: every default sentence, 14 DINOv2 images.
MAX_PAIRS = 1_000_000


def measure_induction(loaded, batch_size: int = 8) -> np.ndarray:
    """(layers, heads) induction scores of a loaded causal text model (stats.induction_scores on
    its attention over repeated random tokens, averaged over the sequences)."""
    from .capture.induction import capture_repeated

    captured, prepared, start, period = capture_repeated(loaded, batch_size)
    scores = np.zeros((loaded.layers, loaded.heads))
    for layer in range(loaded.layers):
        for i in range(len(prepared.lengths)):
            rows = slice(prepared.offsets[i], prepared.offsets[i + 1])
            att = item_attention(captured.q[layer][rows], captured.k[layer][rows], captured.scaling[layer], True)
            scores[layer] += stats.induction_scores(att, period, start)
    return scores / len(prepared.lengths)


def ensure_induction(settings: Settings, atlas: Atlas, reporter: Reporter) -> np.ndarray | None:
    """The atlas's induction scores: stored, or measured now by loading its model (causal atlases
    captured before induction was measured); None for a model that is not causal."""
    if not atlas.causal:
        return None
    scores = atlas.induction()
    if scores is None:
        from .capture.loader import load_model
        from .catalog import get_model

        model = atlas.manifest.model
        # A model named by its folder or GGUF file keeps that absolute path as its source.
        entry = get_model(settings, model.source if Path(model.source).is_absolute() else model.id)
        reporter.stage("loading model for induction", 1)
        reporter.message(f"loading {entry.display_label} to measure induction")
        AtlasWriter(atlas.path).write_induction(measure_induction(load_model(entry, settings, "cpu", reporter)))
        reporter.advance()
        scores = atlas.induction()  # as stored (float32), as a build that measured them at capture reads them
    return scores


def sampled_tokens(atlas: Atlas, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, stats.Tokens, int | None]:
    """(rows, offsets, token columns) of `items` as if they were the whole atlas, and the number of
    distinct token texts (None for images, whose patch texts are positions)."""
    table = atlas.tokens
    offsets = atlas.item_offsets
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in items])
    ids = np.unique(np.asarray(table.column("text").to_pylist(), dtype=object), return_inverse=True)[1]
    columns = {name: table.column(name).to_numpy()[rows] for name in ("position", "special", "row", "col")}
    lengths = np.diff(offsets)[items]
    return (rows, np.concatenate([[0], np.cumsum(lengths)]), stats.Tokens(**columns, token_id=ids[rows]),
            int(ids.max()) + 1 if atlas.modality == "text" else None)


def compute_stats(settings: Settings, path: Path, reporter: Reporter | None = None) -> Atlas:
    """Compute and store every head's statistics and the map of heads; returns the atlas reread."""
    reporter = reporter or Silent()
    atlas = Atlas(path)
    t0, cpu0 = time.perf_counter(), time.process_time()
    induction = ensure_induction(settings, atlas, reporter)
    lengths = np.diff(atlas.item_offsets)
    sample = stats.sample_items(lengths, MAX_PAIRS)
    rows, offsets, tokens, token_ids = sampled_tokens(atlas, sample)
    # the map's items: an even sample of the statistics' sample (positions in it)
    in_map = stats.sample_items(lengths[sample], headmap.MAX_ENTRIES)
    map_rows = headmap.map_rows(lengths[sample], in_map)
    L, H, causal = atlas.layers, atlas.heads, atlas.causal
    values = {name: np.full((L, H), np.nan) for name in stats.STATISTICS}
    roots = np.zeros((L, H, 0), dtype=np.float32)
    reporter.stage("head statistics", L)
    for layer in range(L):
        found: dict[int, np.ndarray] = {}

        def keep(batch: stats.Batch, att: np.ndarray) -> None:
            for b, i in enumerate(batch.items):
                if int(i) in map_rows:
                    found[int(i)] = headmap.root_rows(att[b], map_rows[int(i)], causal)

        result = stats.layer_statistics(atlas.queries(layer, rows), atlas.keys(layer, rows), atlas.scaling(layer),
                                        causal, offsets, tokens, token_ids, keep)
        for name, v in result.items():
            values[name][layer] = v
        layer_roots = np.concatenate([found[i] for i in sorted(found)], axis=1)
        roots = layer_roots[None] if layer == 0 else np.concatenate([roots, layer_roots[None]])
        reporter.advance()
    if induction is not None:
        values["induction"] = induction.astype(np.float64)
    kept_rows = headmap.row_count(map_rows, lengths[sample], causal)
    distance = headmap.head_distances(roots.reshape(L * H, -1), kept_rows)
    coords, fit = headmap.head_map(distance, settings.seed)
    meta = {
        "version": stats.VERSION,
        "definitions": {name: {"definition": d, "unit": u} for name, (d, u) in stats.DEFINITIONS.items()},
        "distance_unit": "patches" if atlas.modality == "image" else "tokens",
        "thresholds": stats.THRESHOLDS,
        "sample": {"items": int(len(sample)), "of": int(len(lengths)), "tokens": int(len(rows))},
        "headmap": {"distance": "Hellinger distance between the heads' attention rows on the same queries",
                    "method": "metric MDS (scikit-learn SMACOF)", "items": int(len(in_map)), "rows": kept_rows, **fit},
        "seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),  # every thread's: a busy machine inflates seconds
    }
    AtlasWriter(atlas.path).write_stats(stats_table(atlas, values), meta, coords, distance)
    return Atlas(atlas.path)


def stats_table(atlas: Atlas, values: dict[str, np.ndarray]) -> pa.Table:
    """One row per head, layer by layer: layer, head, kv_head, kind, label, then every statistic (null for NaN)."""
    L, H = atlas.layers, atlas.heads
    unit = "patches" if atlas.modality == "image" else "tokens"
    rows = [(layer, head) for layer in range(L) for head in range(H)]
    labels = [stats.label({name: values[name][layer, head] for name in stats.STATISTICS}, unit)
              for layer, head in rows]
    columns = {
        "layer": pa.array([layer for layer, _ in rows], pa.int32()),
        "head": pa.array([head for _, head in rows], pa.int32()),
        "kv_head": pa.array([atlas.manifest.kv_group(head) for _, head in rows], pa.int32()),
        "kind": [kind for kind, _ in labels],
        "label": [text for _, text in labels],
    }
    for name in stats.STATISTICS:
        flat = values[name].reshape(-1)
        columns[name] = pa.array(flat, pa.float64(), mask=~np.isfinite(flat))
    return pa.table(columns)


def open_with_stats(settings: Settings, name: str, reporter: Reporter | None = None) -> Atlas:
    """The atlas a person named (`qkatlas stats ATLAS`), its statistics computed first when missing,
    under the atlas's build lock (a build running on it is said at once, not raced)."""
    from .info import open_named
    from .versions import build_lock

    atlas = open_named(settings, name)
    if atlas.has_stats(stats.VERSION):
        return atlas
    named = Path(name.rstrip("/"))
    with build_lock(named.parent if named.is_dir() else Path(settings.data_dir), atlas.id):
        return stats_stage(settings, atlas.path, reporter)


def stats_stage(settings: Settings, path: Path, reporter: Reporter | None = None) -> Atlas:
    """The atlas at `path`, its statistics computed unless those of the current definitions are stored."""
    atlas = Atlas(path)
    return atlas if atlas.has_stats(stats.VERSION) else compute_stats(settings, path, reporter)
