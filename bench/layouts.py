"""UMAP and t-SNE layouts of the default MiniLM atlas (issue 17 parts 2 and 3): the build's
reduce stage against the libraries called one head and one dim at a time, in the same run;
prints one JSON object.

    python bench/layouts.py                                   # the issue's figures (~1 h on 2 cores)
    python bench/layouts.py --limit 60 --umap-heads 2 --tsne-heads 2 --tsne-baseline-heads 1   # proves it runs

The atlas: all-MiniLM-L6-v2 (6 x 12 heads) on the bundled corpus, 14,880 points per head, built
once into --data-dir (capture only) from ../shared/models or the Hugging Face cache.

UMAP: UMAP 2-D then 3-D of --umap-heads heads (default all 72, spread over the layers) by
`reduce_layout` as `qkatlas build` runs it (a pool over every core; one exact kNN graph per head,
shared by both dims; scored and written), against umap-learn's defaults (NN-descent, spectral
start, 200 epochs; seeded, so one thread) per head and per dim in one process, also scored and
written. Target: >= 3x faster, knn_recall@10 within 0.02.

t-SNE: t-SNE 2-D then 3-D of --tsne-heads heads (default all) by `reduce_layout`, from a fresh
copy (its kNN graphs included), against openTSNE's defaults (Annoy kNN, PCA start, 250 + 500
iterations; FFT gradient in 2-D, Barnes-Hut in 3-D) on --tsne-baseline-heads of those heads, whose
time is also scaled to every head over every core (an estimate, said so). Target: the whole atlas
in < 20 min, knn_recall@10 within 0.03 on the same heads.

Both sides report wall seconds and CPU seconds (this process and its pool workers): the CPU ratio
is the work saved, the wall ratio adds what the pool's parallelism gives. Quality is
reduce/quality.py's knn_recall@10 (500 sampled points per head, the same seed on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from baselines import open_tsne, umap_learn  # bench/baselines.py
from machine import recorded  # bench/machine.py
from qkatlas.build import build
from qkatlas.layout import Layout
from qkatlas.reduce.executor import plan_workers
from qkatlas.reduce.quality import projection_quality
from qkatlas.reduce.run import heads_of, joint_cloud, reduce_layout
from qkatlas.settings import Settings
from qkatlas.store import Atlas

UMAP_TARGET = {"speedup": 3.0, "recall_within": 0.02}
TSNE_TARGET = {"seconds": 20 * 60, "recall_within": 0.03}
RECALL = "knn_recall@10"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(fn) -> dict:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(cpu_seconds() - cpu, 1)}


def spread(heads: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """n heads evenly spread over the list (every layer gets its share)."""
    return [heads[i] for i in np.linspace(0, len(heads) - 1, min(n, len(heads))).round().astype(int)]


def fresh_copy(atlas: Path, into: Path) -> Path:
    """The atlas's vectors without any layout or kept kNN graph: every layout is fitted afresh."""
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(atlas, into, ignore=shutil.ignore_patterns("projections", "knn"))
    return into


def library(atlas: Atlas, heads: list[tuple[int, int]], dims: tuple[int, ...], fit, seed: int, out: Path) -> dict:
    """What a build does with the library, head by head and dim by dim in this process: fit,
    score, store. -> measured time and each (head, dim)'s knn_recall@10."""
    recall: dict[tuple[int, int, int], float] = {}

    def run():
        for layer, head in heads:
            X = joint_cloud(atlas, layer, head)
            for dim in dims:
                Y = np.asarray(fit(X, dim, seed), dtype=np.float32)
                recall[layer, head, dim] = projection_quality(X, Y, seed=seed)[RECALL]
                np.save(out / f"L{layer:02d}H{head:02d}-{dim}d.npy", Y)

    return measured(run) | {"recall": recall}


def ours(path: Path, method: str, heads: list[tuple[int, int]], dims: tuple[int, ...], seed: int) -> dict:
    """The build's reduce stage, layout after layout (all heads of 2-D, then of 3-D)."""
    each = {}

    def run():
        for dim in dims:
            each[f"{method}-{dim}d"] = measured(lambda: reduce_layout(path, Layout(method, dim), heads, workers=0,
                                                                      seed=seed))

    timing = measured(run) | {"per_layout": each}
    atlas = Atlas(path)
    recall = {(layer, head, dim): atlas.projection_meta(layer, head, Layout(method, dim))["quality"][RECALL]
              for layer, head in heads for dim in dims}
    params = {dim: atlas.projection_meta(*heads[0], Layout(method, dim))["params"] for dim in dims}
    return timing | {"recall": recall, "params": params}


def compare(ours_recall: dict, theirs: dict, dims: tuple[int, ...]) -> dict:
    """Per dim: mean knn_recall@10 of both sides over the heads both have, and ours minus theirs."""
    out = {}
    for dim in dims:
        keys = [key for key in theirs if key[2] == dim]
        a, b = np.array([ours_recall[key] for key in keys]), np.array([theirs[key] for key in keys])
        out[f"{dim}d"] = {"qkatlas": round(float(a.mean()), 4), "library": round(float(b.mean()), 4),
                          "mean_difference": round(float((a - b).mean()), 4),
                          "worst_head_difference": round(float((a - b).min()), 4), "heads": len(keys)}
    return out


def warm_up(seed: int) -> None:
    """numba compiling umap-learn's and pynndescent's code, once per machine thanks to its cache
    (NUMBA_CACHE_DIR): not a layout's cost on either side."""
    from qkatlas.reduce import make_reducer

    X = np.random.default_rng(seed).normal(size=(5000, 32)).astype(np.float32)
    umap_learn(X, 2, seed)
    make_reducer("umap", 2, seed).fit_transform(X)


def minilm_atlas(data_dir: Path, limit: int | None) -> Path:
    """The default MiniLM atlas's captured vectors (no layouts), built once into data_dir;
    `limit`: only the corpus's first sentences (a quick check, not the issue's figures)."""
    return build(Settings(data_dir=data_dir), "minilm", "default", limit, methods=[], dims=[2]).resolve()


def umap_part(atlas_path: Path, work: Path, n_heads: int, seed: int) -> dict:
    heads = spread(heads_of(Atlas(atlas_path)), n_heads)
    dims = (2, 3)
    base_dir = work / "umap-learn"
    base_dir.mkdir()
    mine = ours(fresh_copy(atlas_path, work / "umap"), "umap", heads, dims, seed)
    theirs = library(Atlas(atlas_path), heads, dims, umap_learn, seed, base_dir)
    speed_wall, speed_cpu = theirs["wall_s"] / mine["wall_s"], theirs["cpu_s"] / mine["cpu_s"]
    quality = compare(mine["recall"], theirs["recall"], dims)
    return {"heads": len(heads), "layouts": ["umap-2d", "umap-3d"],
            "qkatlas": {"wall_s": mine["wall_s"], "cpu_s": mine["cpu_s"], "per_layout": mine["per_layout"],
                        "workers": plan_workers(0, len(heads))[0], "params": mine["params"]},
            "umap_learn_per_head_per_dim": {"wall_s": theirs["wall_s"], "cpu_s": theirs["cpu_s"], "workers": 1},
            "speedup_wall": round(speed_wall, 2), "speedup_cpu": round(speed_cpu, 2), RECALL: quality,
            "target": UMAP_TARGET,
            "meets_target": speed_wall >= UMAP_TARGET["speedup"] and all(
                q["mean_difference"] >= -UMAP_TARGET["recall_within"] for q in quality.values())}


def tsne_part(atlas_path: Path, work: Path, n_heads: int, n_baseline: int, seed: int) -> dict:
    every = heads_of(Atlas(atlas_path))
    heads = spread(every, n_heads)
    sampled = spread(heads, n_baseline)
    dims = (2, 3)
    base_dir = work / "opentsne"
    base_dir.mkdir()
    mine = ours(fresh_copy(atlas_path, work / "tsne"), "tsne", heads, dims, seed)
    theirs = library(Atlas(atlas_path), sampled, dims, open_tsne, seed, base_dir)
    cores = os.cpu_count() or 1
    # the sampled heads' CPU time, scaled to every head of the atlas and spread over every core
    estimate = theirs["cpu_s"] / len(sampled) * len(every) / cores
    quality = compare(mine["recall"], theirs["recall"], dims)
    whole = len(heads) == len(every)
    return {"heads": len(heads), "whole_atlas": whole, "layouts": ["tsne-2d", "tsne-3d"],
            "qkatlas": {"wall_s": mine["wall_s"], "cpu_s": mine["cpu_s"], "per_layout": mine["per_layout"],
                        "workers": plan_workers(0, len(heads))[0], "params": mine["params"]},
            "opentsne_defaults": {"heads_timed": len(sampled), "wall_s": theirs["wall_s"], "cpu_s": theirs["cpu_s"],
                                  f"whole_atlas_estimate_s_on_{cores}_cores": round(estimate),
                                  "estimate": "CPU seconds of the heads timed, scaled to every head, "
                                              "divided by the cores (an ideal pool)"},
            RECALL: quality, "target": TSNE_TARGET,
            "meets_target": whole and mine["wall_s"] < TSNE_TARGET["seconds"] and all(
                q["mean_difference"] >= -TSNE_TARGET["recall_within"] for q in quality.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=".cache/bench-atlases", help="where the MiniLM atlas is built once")
    ap.add_argument("--umap-heads", type=int, default=72, help="heads of the UMAP comparison (0: skip it)")
    ap.add_argument("--tsne-heads", type=int, default=72, help="heads qkatlas fits t-SNE for (0: skip t-SNE)")
    ap.add_argument("--tsne-baseline-heads", type=int, default=3, help="of those, heads openTSNE's defaults fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the corpus's first sentences (a quick check)")
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))
    result: dict = {"bench": "layouts"}
    with recorded(result), tempfile.TemporaryDirectory() as tmp:
        atlas_path = minilm_atlas(Path(args.data_dir), args.limit)
        atlas = Atlas(atlas_path)
        result["atlas"] = {"model": "minilm (all-MiniLM-L6-v2)", "corpus": "default", "limit": args.limit,
                           "heads": atlas.total_heads,
                           "points_per_head": 2 * atlas.n_tokens, "head_dim": atlas.head_dim}
        warm_up(args.seed)
        if args.umap_heads:
            result["umap"] = umap_part(atlas_path, Path(tmp), args.umap_heads, args.seed)
            print(json.dumps({"umap": result["umap"]}), file=sys.stderr, flush=True)  # progress while it runs
        if args.tsne_heads:
            result["tsne"] = tsne_part(atlas_path, Path(tmp), args.tsne_heads, args.tsne_baseline_heads, args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
