"""Batched torch UMAP (every head in one fit) against umap-learn one head after another, in
the same run, on the same synthetic heads; prints one JSON object.

    python bench/umap_batched.py --threads 1                      # 6 heads x 5000 points, CPU
    python bench/umap_batched.py --device cuda --heads 144 --points 20000 --baseline-heads 2

umap-learn runs as qkatlas's UMAPReducer does (random_state set, hence single-threaded);
with --baseline-heads below --heads its time is measured on that many heads and scaled up.
Both layouts are scored with qkatlas's own quality measure (knn_recall@10 on 500 points).
On a small shared CPU use --threads 1: the batched loop's many small ops lose to OpenMP waits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from reduce import cloud  # bench/reduce.py: the same synthetic head clouds

from qkatlas.reduce import make_reducer
from qkatlas.reduce.batched_umap import curve_params, default_epochs, umap_heads
from qkatlas.reduce.quality import projection_quality


def timed_batched(X: torch.Tensor, seed: int) -> tuple[np.ndarray, float]:
    sync = torch.cuda.synchronize if X.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    Y = umap_heads(X, 2, seed=seed)
    sync()
    return Y.cpu().numpy(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--points", type=int, default=5000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--baseline-heads", type=int, default=None, help="umap-learn heads to time (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    clouds = np.stack([cloud(args.points, args.features, seed=h) for h in range(args.heads)])
    X = torch.from_numpy(clouds).to(args.device)

    curve_params(0.1)  # imports umap-learn; not part of any timing
    make_reducer("umap", 2).fit_transform(cloud(500, args.features))  # numba compile, likewise
    umap_heads(X[:1, :500], 2, n_epochs=5)  # CUDA context, kernels, allocator
    if args.threads:  # after umap-learn has run: numba resets the OpenMP thread count torch shares
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    Y, batched = timed_batched(X, args.seed)

    base_heads = min(args.heads, args.baseline_heads or args.heads)
    t0 = time.perf_counter()
    R = [make_reducer("umap", 2, seed=args.seed).fit_transform(clouds[h]) for h in range(base_heads)]
    baseline = (time.perf_counter() - t0) * args.heads / base_heads

    def recall(layouts) -> float:  # mean over the first len(layouts) heads
        return round(float(np.mean([projection_quality(clouds[h], Z)["knn_recall@10"]
                                    for h, Z in enumerate(layouts)])), 4)

    on_gpu = X.device.type == "cuda"
    print(json.dumps({
        "bench": "umap_batched", "device": str(X.device),
        "device_name": torch.cuda.get_device_name(X.device) if on_gpu else platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(), "torch_threads": threads,
        "heads": args.heads, "points_per_head": args.points, "features": args.features, "dim": 2,
        "n_epochs": default_epochs(args.points),
        "batched_seconds": round(batched, 2),
        "umap_learn_seconds": round(baseline, 2),
        "umap_learn_heads_timed": base_heads,
        "speedup": round(baseline / batched, 2),
        "knn_recall@10": {"batched": recall(Y[:base_heads]), "umap_learn": recall(R)},  # the same heads
        "baseline": "umap-learn (qkatlas UMAPReducer: spectral init, random_state, 1 thread), one head "
                    "after another, same process",
    }, indent=2))


if __name__ == "__main__":
    main()
