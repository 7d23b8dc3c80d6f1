"""Reduce one layout for a set of heads: the one entry point of the reduce stage.

`reduce_layout` skips the heads already written (a killed build resumes where it stopped) and
fits the rest with the layout's reducer: its batched form, one task per layer, where that pays
on the device; otherwise one task per head. The tasks run in executor.py's process pool, or on
a Dask cluster (cluster.py) when one is given. Either way each head's projection is written
exactly once, its quality already in the .json: a task rerun after its worker died skips the
heads already written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from ..agreement import layout_agreement
from ..joint import to_joint
from ..layout import Layout
from ..store import Atlas, AtlasWriter
from .executor import run_tasks
from .knn import head_graph
from .methods import REDUCERS, HeadFit, Reducer, make_reducer
from .quality import projection_quality

if TYPE_CHECKING:
    from .cluster import Cluster

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
                  batched: bool | None = None, cluster: Cluster | None = None) -> list[dict]:
    """Fit and write `layout` for every head of `heads` (default: all) not written yet.

    Returns one summary {"layer", "head", "layout", "seconds"} per head written, each also
    passed to `on_done` as soon as its files are written. `batched` forces the reducer's
    batched form (True) or one task per head (False); None lets the reducer decide from the
    device: `device` here, the cluster's ("cuda" when a worker declares a GPU) on a cluster.
    """
    atlas = Atlas(atlas_path)
    todo = pending_heads(atlas, layout, heads)
    if not todo:
        return []
    path = str(atlas.path.absolute())  # a task may run on another machine, in another working dir
    if cluster is not None:
        cluster.check_sees(path)
        device = cluster.device
    if REDUCERS[layout.method].batched_on(device) if batched is None else batched:
        tasks = [(path, layer, layer_heads, layout, device, seed) for layer, layer_heads in _by_layer(todo).items()]
        each = (lambda summaries: [on_done(s) for s in summaries]) if on_done else None
        layers = (cluster.run_tasks(reduce_layer, tasks, each, gpu=device != "cpu") if cluster
                  else run_tasks(reduce_layer, tasks, 1, each))  # here, in this process: one fit holds a layer
        return [summary for summaries in layers for summary in summaries]
    tasks = [(path, layer, head, layout, seed) for layer, head in todo]
    if cluster:
        return cluster.run_tasks(reduce_head, tasks, on_done)
    return run_tasks(reduce_head, tasks, workers, on_done)


def reduce_head(atlas_path: str, layer: int, head: int, layout: Layout, seed: int, threads: int) -> dict:
    """Fit and write one head's layout; a pool or cluster task, so it opens the atlas itself."""
    atlas = Atlas(Path(atlas_path))
    if atlas.has_projection(layer, head, layout):  # a rerun of a task whose worker died after writing
        return _written(atlas, layer, head, layout)
    X = joint_cloud(atlas, layer, head)
    t0 = time.perf_counter()
    reducer = make_reducer(layout.method, layout.dim, seed, threads)
    # The head's kNN graph is computed by its first layout that needs one and read by the rest.
    graph = head_graph(atlas.path, layer, head, X, reducer.neighbours) if reducer.neighbours else None
    fit = reducer.fit_head(X, graph, _start(atlas, layer, head, reducer))
    return _write(atlas, layer, head, layout, X, fit, time.perf_counter() - t0, seed)


def _start(atlas: Atlas, layer: int, head: int, reducer: Reducer) -> np.ndarray | None:
    """The stored layout of this head that `reducer` begins from (its `starts_from`), if written."""
    if reducer.starts_from is None:
        return None
    layout = Layout(*reducer.starts_from)
    return np.asarray(atlas.projection(layer, head, layout)) if atlas.has_projection(layer, head, layout) else None


def reduce_layer(atlas_path: str, layer: int, heads: list[int], layout: Layout, device: str, seed: int,
                 threads: int) -> list[dict]:
    """Fit and write `heads` of one layer with the reducer's batched form on `device`, as one task:
    a layer's clouds fit in memory together, and heads of one layer share their size, which a
    batch needs. Heads already written (by an earlier run of this task) are left alone."""
    atlas = Atlas(Path(atlas_path))
    written = [_written(atlas, layer, h, layout) for h in heads if atlas.has_projection(layer, h, layout)]
    heads = [h for h in heads if not atlas.has_projection(layer, h, layout)]
    if not heads:
        return written
    clouds = np.stack([joint_cloud(atlas, layer, h) for h in heads])  # (heads, 2 * tokens, head_dim)
    t0 = time.perf_counter()
    fits = make_reducer(layout.method, layout.dim, seed).fit_heads(clouds, device)
    seconds = (time.perf_counter() - t0) / len(heads)
    return written + [_write(atlas, layer, h, layout, X, fit, seconds, seed) for h, X, fit in zip(heads, clouds, fits)]


def _by_layer(todo: list[Head]) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in todo:
        by_layer.setdefault(layer, []).append(head)
    return by_layer


def _written(atlas: Atlas, layer: int, head: int, layout: Layout) -> dict:
    """The summary of a head whose layout is already stored, from its .json."""
    return {"layer": layer, "head": head, "layout": layout.key,
            "seconds": (atlas.projection_meta(layer, head, layout) or {}).get("seconds", 0.0)}


def _write(atlas: Atlas, layer: int, head: int, layout: Layout, X: np.ndarray, fit: HeadFit, seconds: float,
           seed: int) -> dict:
    """Score one head's layout against its joint cloud X (2 * tokens, head_dim) and against its
    attention (agreement.py), and store both."""
    meta = {"params": fit.params, "seconds": round(seconds, 4), "points": int(len(fit.coords)),
            "quality": projection_quality(X, fit.coords, seed=seed)
            | layout_agreement(fit.coords, *atlas.head_vectors(layer, head), atlas.item_offsets, atlas.causal, seed),
            **fit.placement}
    AtlasWriter(atlas.path).write_projection(layer, head, layout, fit.coords, meta)
    return {"layer": layer, "head": head, "layout": layout.key, "seconds": seconds}
