"""The six layouts (PCA, UMAP, t-SNE in 2-D and 3-D) of a whole synthetic atlas through the
build's reduce stage on one device, against the libraries one head at a time, in the same run;
prints one JSON object.

    python bench/gpu_layouts.py --device cuda                          # 144 heads (12 x 12) x 20k points
    python bench/gpu_layouts.py --device cpu --heads 2 --points 500 --batched   # proves it runs; no figures

The atlas is bench/synthetic.py's (64-D clustered q/k; time depends on sizes, not values).
Our side is `reduce_layout`, as `qkatlas build` runs it: batched one layer at a time where the
reducer says it pays on the device (PCA everywhere; UMAP and t-SNE on CUDA, the t-SNE repulsion
compiled on first use, which the first layer's time includes), scoring and writing every head.
The baseline is qkatlas's per-head reducer on the CPU (sklearn PCA, umap-learn, openTSNE; one
thread each, seeded), timed on --baseline-heads heads and scaled to all of them: once as one
core, once as a pool over every core of this machine (the per-head time / cores, ideal).
Quality: knn_recall@10 (reduce/quality.py) of the same heads, stored by the build and from the
baseline's layouts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from reduce import cloud  # bench/reduce.py: the same synthetic head clouds

from machine import recorded  # bench/machine.py
from qkatlas.layout import ALL, Layout
from qkatlas.reduce import REDUCERS, make_reducer
from qkatlas.reduce.quality import projection_quality
from qkatlas.reduce.run import joint_cloud, reduce_layout
from qkatlas.store import Atlas
from synthetic import synthetic_atlas  # bench/synthetic.py

TARGET_SECONDS = 300  # issue 17: the whole 12 x 12 atlas, six layouts, < 5 min on one H100


def ours(path: Path, layout: Layout, device: str, seed: int, batched: bool | None) -> dict:
    """The reduce stage for one layout, every head: wall seconds and the fit seconds of each layer."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    done = reduce_layout(path, layout, device=device, seed=seed, batched=batched)
    sync()
    wall = time.perf_counter() - t0
    by_layer: dict[int, float] = {}
    for summary in done:  # a batched fit's seconds are its layer's time split evenly over its heads
        by_layer[summary["layer"]] = by_layer.get(summary["layer"], 0.0) + summary["seconds"]
    return {"seconds": round(wall, 2), "fit_seconds_per_layer": [round(by_layer[k], 2) for k in sorted(by_layer)],
            "batched": REDUCERS[layout.method].batched_on(device) if batched is None else batched}


def baseline(atlas: Atlas, layout: Layout, heads: int, seed: int) -> tuple[list[float], list[float]]:
    """Per-head seconds and knn_recall@10 of the library on the first `heads` heads of layer 0."""
    seconds, recall = [], []
    for head in range(heads):
        X = joint_cloud(atlas, 0, head)
        t0 = time.perf_counter()
        Y = make_reducer(layout.method, layout.dim, seed=seed, threads=1).fit_transform(X)
        seconds.append(time.perf_counter() - t0)
        recall.append(projection_quality(X, Y, seed=seed)["knn_recall@10"])
    return seconds, recall


def warm_up(points: int, features: int) -> None:
    """What a long-running build pays once and no timing should: numba compiling umap-learn's
    small-data and (above 4096 points) NN-descent paths."""
    for n in (500, 5000) if points > 4096 else (min(points, 500),):
        make_reducer("umap", 2).fit_transform(cloud(n, features))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--heads", type=int, default=144, help="heads in all")
    ap.add_argument("--heads-per-layer", type=int, default=12)
    ap.add_argument("--points", type=int, default=20000, help="points per head (queries + keys)")
    ap.add_argument("--features", type=int, default=64, help="head dim")
    ap.add_argument("--baseline-heads", type=int, default=1, help="heads the libraries are timed on")
    ap.add_argument("--layouts", default=",".join(layout.key for layout in ALL))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batched", action="store_true",
                    help="every method's batched form even where it does not pay (a CPU check of the CUDA code)")
    ap.add_argument("--work-dir", default=None, help="keep the synthetic atlas here (default: a temporary folder)")
    args = ap.parse_args()
    per_layer = min(args.heads_per_layer, args.heads)
    if args.heads % per_layer:
        ap.error(f"--heads {args.heads} is not a whole number of layers of {per_layer} heads")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))
    layouts = [Layout.parse(key) for key in args.layouts.split(",")]
    base_heads = min(args.baseline_heads, per_layer)
    cores = os.cpu_count() or 1
    report: dict = {"bench": "gpu_layouts", "device": args.device, "heads": args.heads,
                    "layers": args.heads // per_layer, "points_per_head": args.points, "features": args.features,
                    "baseline_heads_timed": base_heads, "target_seconds": TARGET_SECONDS, "layouts": []}
    with recorded(report), tempfile.TemporaryDirectory() as tmp:
        if args.device.startswith("cuda"):
            torch.ones(1, device=args.device).sum().item()  # the CUDA context: not a layout's cost
            torch.cuda.reset_peak_memory_stats()
        warm_up(args.points, args.features)
        folder = Path(args.work_dir or tmp) / f"synthetic-{args.heads}x{args.points}"
        path = synthetic_atlas(folder, args.heads // per_layer, per_layer, args.points // 2, args.features,
                               layouts=False, seed=args.seed)
        atlas = Atlas(path)
        for layout in layouts:
            if atlas.has_projection(0, 0, layout):  # a kept --work-dir: time every layout afresh
                raise SystemExit(f"error: {path} already holds {layout.key}; use a fresh --work-dir")
            row = {"layout": layout.key, **ours(path, layout, args.device, args.seed, args.batched or None)}
            seconds, recall = baseline(atlas, layout, base_heads, args.seed)
            per_head = float(np.mean(seconds))
            stored = [Atlas(path).projection_meta(0, h, layout)["quality"]["knn_recall@10"] for h in range(base_heads)]
            row |= {"baseline_seconds_one_core": round(per_head * args.heads, 2),
                    f"baseline_seconds_pool_{cores}_cores": round(per_head * args.heads / cores, 2),
                    "speedup_vs_one_core": round(per_head * args.heads / row["seconds"], 2),
                    f"speedup_vs_pool_{cores}_cores": round(per_head * args.heads / cores / row["seconds"], 2),
                    "knn_recall@10": {"ours": round(float(np.mean(stored)), 4),
                                      "baseline": round(float(np.mean(recall)), 4)}}
            report["layouts"].append(row)
            print(json.dumps(row), flush=True, file=sys.stderr)  # progress while it runs
        total = sum(row["seconds"] for row in report["layouts"])
        report["atlas_seconds"] = round(total, 1)
        report["meets_target"] = len(layouts) == len(ALL) and total < TARGET_SECONDS
        if args.device.startswith("cuda"):
            report["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        report["baseline"] = ("qkatlas's per-head reducers on the CPU (sklearn PCA, umap-learn, openTSNE; seeded, "
                              "one thread), timed on the first heads of layer 0 and scaled to every head")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
