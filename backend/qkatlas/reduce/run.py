"""Reduce one layout for a set of heads: the one entry point of the reduce stage.

`reduce_layout` skips the heads already written (a killed build resumes where it stopped) and
fits the rest with the layout's reducer: its batched form, one layer's heads at a time, where
that pays on the device; otherwise one head per task in executor.py's process pool. Either way
each head's projection is written exactly once, its quality already in the .json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..joint import to_joint
from ..layout import Layout
from ..store import Atlas, AtlasWriter
from .executor import run_tasks
from .methods import REDUCERS, HeadFit, make_reducer
from .quality import projection_quality

Head = tuple[int, int]  # (layer, head)


def joint_cloud(atlas: Atlas, layer: int, head: int) -> np.ndarray:
    """(2 * tokens, head_dim) float32: the head's queries then keys in the joint space."""
    q, k = atlas.head_vectors(layer, head)
    return to_joint(q, k, *atlas.joint_transform(layer, head))


def heads_of(atlas: Atlas, layers: Iterable[int] | None = None) -> list[Head]:
    """Every head of `layers` (default: every layer), layer by layer."""
    return [(layer, head) for layer in (range(atlas.layers) if layers is None else layers)
            for head in range(atlas.heads)]


def pending_heads(atlas: Atlas, layout: Layout, heads: Iterable[Head] | None = None) -> list[Head]:
    """The heads among `heads` (default: all) whose `layout` is not written yet."""
    return [(layer, head) for layer, head in (heads_of(atlas) if heads is None else heads)
            if not atlas.has_projection(layer, head, layout)]


def reduce_layout(atlas_path: Path, layout: Layout, heads: Iterable[Head] | None = None, *, device: str = "cpu",
                  workers: int = 0, seed: int = 0, on_done: Callable[[dict], None] | None = None,
                  batched: bool | None = None) -> list[dict]:
    """Fit and write `layout` for every head of `heads` (default: all) not written yet.

    Returns one summary {"layer", "head", "layout", "seconds"} per head written, each also
    passed to `on_done` as soon as its files are written. `batched` forces the reducer's
    batched form (True) or the pool (False); None lets the reducer decide from `device`.
    """
    atlas = Atlas(atlas_path)
    todo = pending_heads(atlas, layout, heads)
    if not todo:
        return []
    if REDUCERS[layout.method].batched_on(device) if batched is None else batched:
        return _reduce_batched(atlas, layout, todo, device, seed, on_done)
    tasks = [(str(atlas.path), layer, head, layout, seed) for layer, head in todo]
    return run_tasks(reduce_head, tasks, workers, on_done)


def reduce_head(atlas_path: str, layer: int, head: int, layout: Layout, seed: int, threads: int) -> dict:
    """Fit and write one head's layout; a pool task, so it opens the atlas itself."""
    atlas = Atlas(Path(atlas_path))
    X = joint_cloud(atlas, layer, head)
    t0 = time.perf_counter()
    fit = make_reducer(layout.method, layout.dim, seed, threads).fit_head(X)
    return _write(atlas, layer, head, layout, X, fit, time.perf_counter() - t0, seed)


def _reduce_batched(atlas: Atlas, layout: Layout, todo: list[Head], device: str, seed: int,
                    on_done: Callable[[dict], None] | None) -> list[dict]:
    """One batched fit per layer: a layer's clouds fit in memory together, and heads of one
    layer share their size, which a batch needs."""
    reducer = make_reducer(layout.method, layout.dim, seed)
    by_layer: dict[int, list[int]] = {}
    for layer, head in todo:
        by_layer.setdefault(layer, []).append(head)
    summaries = []
    for layer, heads in by_layer.items():
        clouds = np.stack([joint_cloud(atlas, layer, h) for h in heads])  # (heads, 2 * tokens, head_dim)
        t0 = time.perf_counter()
        fits = reducer.fit_heads(clouds, device)
        seconds = (time.perf_counter() - t0) / len(heads)
        for head, X, fit in zip(heads, clouds, fits):
            summaries.append(_write(atlas, layer, head, layout, X, fit, seconds, seed))
            if on_done:
                on_done(summaries[-1])
    return summaries


def _write(atlas: Atlas, layer: int, head: int, layout: Layout, X: np.ndarray, fit: HeadFit, seconds: float,
           seed: int) -> dict:
    """Score one head's layout against its joint cloud X (2 * tokens, head_dim) and store both."""
    meta = {"params": fit.params, "seconds": round(seconds, 4), "points": int(len(fit.coords)),
            "quality": projection_quality(X, fit.coords, seed=seed), **fit.placement}
    AtlasWriter(atlas.path).write_projection(layer, head, layout, fit.coords, meta)
    return {"layer": layer, "head": head, "layout": layout.key, "seconds": seconds}
