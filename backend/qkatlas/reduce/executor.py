"""Runs (layer, head, method, dim) jobs over an atlas, in parallel, writing each when done.

Heads are independent. Jobs run in a process pool of `workers` processes, each limited to
`cores // workers` BLAS/OpenMP/numba threads so the machine is never oversubscribed. A job
whose projection file exists is skipped, so a killed build resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np

from ..files import write_json
from ..joint import to_joint
from ..layout import Layout
from ..store import Atlas, AtlasWriter, projection_file
from .methods import make_reducer
from .quality import projection_quality


@dataclass(frozen=True)
class Job:
    layer: int
    head: int
    layout: Layout


def joint_cloud(atlas: Atlas, layer: int, head: int) -> np.ndarray:
    """(2 * tokens, head_dim) float32: the head's queries then keys in the joint space."""
    q, k = atlas.head_vectors(layer, head)
    joint = atlas.joint
    return to_joint(q, k, joint["translation"][layer, head], float(joint["scale"][layer, head]))


def run_job(atlas_path: str, job: Job, seed: int = 0, threads: int = 1) -> dict:
    """Reduce one head with one method and write it; returns the projection's metadata."""
    atlas = Atlas(Path(atlas_path))
    X = joint_cloud(atlas, job.layer, job.head)
    reducer = make_reducer(job.layout.method, job.layout.dim, seed=seed, threads=threads)
    t0 = time.perf_counter()
    Y = reducer.fit_transform(X)
    seconds = time.perf_counter() - t0
    meta = {
        "params": reducer.params,
        "seconds": round(seconds, 4),
        "points": int(len(Y)),
        "quality": projection_quality(X, Y, seed=seed),
        **reducer.placement(),
    }
    AtlasWriter(atlas.path).write_projection(job.layer, job.head, job.layout, Y, meta)
    return {"layer": job.layer, "head": job.head, "layout": job.layout.key, "seconds": seconds}


def run_pca_layers(atlas_path: Path, dim: int, layers: list[int] | None = None, device: str = "cpu",
                   on_done: Callable[[dict], None] | None = None) -> None:
    """PCA for every head still missing, one batched fit per layer; quality is left for
    `fill_quality`, so every head has a layout as early as possible."""
    from .batched_pca import pca_layer

    atlas = Atlas(Path(atlas_path))
    writer = AtlasWriter(atlas.path)
    layout = Layout("pca", dim)
    for layer in layers if layers is not None else range(atlas.layers):
        missing = [h for h in range(atlas.heads) if not writer.has_projection(layer, h, layout)]
        if not missing:
            continue
        t0 = time.perf_counter()
        clouds = np.stack([joint_cloud(atlas, layer, h) for h in missing])
        results = pca_layer(clouds, dim, device)
        seconds = (time.perf_counter() - t0) / len(missing)
        for h, (coords, params, placement) in zip(missing, results):
            meta = {"params": params, "seconds": round(seconds, 4), "points": int(len(coords)), **placement}
            writer.write_projection(layer, h, layout, coords, meta)
            if on_done:
                on_done({"layer": layer, "head": h, "layout": layout.key, "seconds": seconds})


def run_umap_batched(atlas_path: Path, dim: int, layers: list[int] | None = None, device: str = "cpu",
                     on_done: Callable[[dict], None] | None = None, seed: int = 0,
                     layers_per_batch: int = 1, n_epochs: int | None = None) -> None:
    """UMAP for every head still missing, the heads of `layers_per_batch` layers in one
    batched torch fit (see batched_umap); quality is left for `fill_quality`."""
    import torch

    from .batched_umap import default_epochs, umap_heads, umap_params

    atlas = Atlas(Path(atlas_path))
    writer = AtlasWriter(atlas.path)
    layout = Layout("umap", dim)
    chosen = list(layers if layers is not None else range(atlas.layers))
    step = max(1, layers_per_batch)
    for start in range(0, len(chosen), step):
        missing = [(layer, h) for layer in chosen[start:start + step] for h in range(atlas.heads)
                   if not writer.has_projection(layer, h, layout)]
        if not missing:
            continue
        t0 = time.perf_counter()
        clouds = torch.from_numpy(np.stack([joint_cloud(atlas, layer, h) for layer, h in missing])).to(device)
        epochs = n_epochs or default_epochs(clouds.shape[1])
        coords = umap_heads(clouds, dim, seed=seed, n_epochs=epochs).cpu().numpy()
        seconds = (time.perf_counter() - t0) / len(missing)
        params = umap_params(seed, epochs)
        for (layer, h), Y in zip(missing, coords):
            writer.write_projection(layer, h, layout, Y, {"params": params, "seconds": round(seconds, 4),
                                                          "points": int(len(Y))})
            if on_done:
                on_done({"layer": layer, "head": h, "layout": layout.key, "seconds": seconds})


def fill_quality(atlas_path: Path, layout: Layout, seed: int = 0,
                 on_done: Callable[[dict], None] | None = None) -> int:
    """Compute the neighbourhood-preservation score of every projection that lacks one."""
    atlas = Atlas(Path(atlas_path))
    done = 0
    for layer in range(atlas.layers):
        for head in range(atlas.heads):
            meta = atlas.projection_meta(layer, head, layout)
            if meta is None or meta.get("quality"):
                continue
            Y = atlas.projection(layer, head, layout)
            meta["quality"] = projection_quality(joint_cloud(atlas, layer, head), Y, seed=seed)
            write_json(projection_file(atlas.path, layer, head, layout).with_suffix(".json"), meta)
            done += 1
            if on_done:
                on_done({"layer": layer, "head": head})
    return done


def pending_jobs(atlas: Atlas, layout: Layout, layers: list[int] | None = None) -> list[Job]:
    return [Job(layer, head, layout)
            for layer in (layers if layers is not None else range(atlas.layers))
            for head in range(atlas.heads) if not atlas.has_projection(layer, head, layout)]


def plan_workers(requested: int, jobs: int) -> tuple[int, int]:
    """(processes, threads per process) with processes x threads <= cores."""
    cores = os.cpu_count() or 1
    workers = requested if requested > 0 else cores
    workers = max(1, min(workers, cores, jobs))
    return workers, max(1, cores // workers)


def _init_worker(threads: int) -> None:
    # Set before numba/BLAS start their pools in this process.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def run_jobs(
    atlas_path: Path,
    jobs: list[Job],
    workers: int = 0,
    seed: int = 0,
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run `jobs`; in this process when one worker is enough, else in a process pool."""
    if not jobs:
        return []
    processes, threads = plan_workers(workers, len(jobs))
    results = []
    if processes == 1:
        for job in jobs:
            results.append(run_job(str(atlas_path), job, seed, threads * processes))
            if on_done:
                on_done(results[-1])
        return results
    ctx = get_context("spawn")  # torch may be loaded in the parent: never fork it
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(run_job, str(atlas_path), job, seed, threads) for job in jobs}
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                results.append(f.result())
                if on_done:
                    on_done(results[-1])
    return results
