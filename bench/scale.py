"""Building on a Dask cluster: the whole-atlas build time of a 12 x 12 model at 1, 2 and 4
workers, how the reduce cost grows with heads and with tokens, and what that predicts for a
32 x 32 model over 1M tokens.

    python bench/scale.py                     # the figures in the README (~30 min on 2 cores)
    python bench/scale.py --items 12 --shape 2x4 --workers 1,2 --heads 4,8,16 --tokens 150,300,600
                                              # a smoke run: a minute or two

Workers are Dask worker processes on loopback (distributed.LocalCluster, one thread each), so
on a machine with C cores more than C workers cannot go faster: the figures say how many cores
there were. The baseline, in the same run, is the single-machine build (no scheduler, the local
process pool with one process per core). Every build starts from an empty data dir, so capture
(always on the building machine) is in each time; reduce time is reported apart.

The model is GPT-2 small's shape with random weights (speed does not depend on the weights),
captured on the bundled sentences. Growth is measured on synthetic atlases (bench/synthetic.py).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from qkatlas.build import build
from qkatlas.layout import Layout
from qkatlas.reduce.cluster import Cluster
from qkatlas.reduce.methods import REDUCERS
from qkatlas.reduce.run import reduce_layout
from qkatlas.settings import Settings
from machine import recorded  # bench/machine.py
from synthetic import synthetic_atlas  # bench/synthetic.py

MODEL = "bench-gpt2-random"


def catalog(folder: Path, layers: int, heads: int) -> Path:
    """A catalog holding one random-init GPT-2 of `layers` x `heads` (head_dim 64)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODEL}.toml").write_text(f"""\
id = "{MODEL}"
label = "GPT-2 {layers} x {heads} (random init, benchmark)"
family = "gpt2"
modality = "text"
loader = "random"
source = "gpt2"
tokenizer = "openai-community/gpt2"
tokenizer_local = ["gpt2-tokenizer"]
random = true

[config]
n_layer = {layers}
n_head = {heads}
n_embd = {64 * heads}
n_positions = 1024
""")
    return folder


class StageClock:
    """A Reporter that notes when each build stage starts: seconds per stage, for the JSON."""

    def __init__(self):
        self.starts: list[tuple[str, float]] = []

    def stage(self, name: str, total: int) -> None:
        self.starts.append((name, time.perf_counter()))

    def advance(self, n: int = 1) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def seconds(self, end: float) -> dict[str, float]:
        ends = [t for _, t in self.starts[1:]] + [end]
        return {name: round(stop - start, 2) for (name, start), stop in zip(self.starts, ends)}


def warm_up(methods: list[str]) -> float:
    """Run on each worker before timing: the first fit of each method in a process imports torch
    and compiles umap-learn's numba code (tens of seconds), a cost a long-lived cluster pays once,
    not per build."""
    import numpy as np

    from qkatlas.reduce.methods import make_reducer
    from qkatlas.reduce.quality import projection_quality

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for points in (600, 5000):  # umap-learn: exact kNN below 4096 points, NN-descent above
        X = rng.normal(size=(points, 16)).astype(np.float32)
        for method in methods:
            if method == "tsne" and points > 600:
                continue  # one code path, warm after the small fit; 5000 points would cost a minute
            reducer = make_reducer(method, 2)
            Y = reducer.fit_heads(X[None], "cpu")[0].coords if REDUCERS[method].batched_on("cpu") \
                else reducer.fit_transform(X)
            projection_quality(X, Y)
    return time.perf_counter() - t0


def timed_build(settings: Settings, items: int, methods: list[str], dims: list[int]) -> dict:
    clock = StageClock()
    t0 = time.perf_counter()
    build(settings, MODEL, "default", items, methods, dims, device="cpu", reporter=clock)
    end = time.perf_counter()
    stages = clock.seconds(end)
    reduce = sum(s for name, s in stages.items() if name.split()[0] in ("PCA", "UMAP", "t-SNE"))
    return {"seconds": round(end - t0, 2), "reduce_seconds": round(reduce, 2), "stages": stages}


def local_cluster(workers: int, methods: list[str]):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster)
    compile_s = client.run(warm_up, methods)
    return cluster, client, round(max(compile_s.values()), 2)


def whole_atlas(root: Path, base: Settings, args, methods: list[str], dims: list[int]) -> dict:
    out = {"baseline_single_machine": timed_build(base.with_(data_dir=root / "local"), args.items, methods, dims)}
    out["baseline_single_machine"]["how"] = (f"no scheduler: the local pool, {os.cpu_count()} processes, spawned per "
                                             "layout (numba compiles umap-learn in each: inside these seconds)")
    out["cluster"] = []
    for n in args.workers:
        cluster, client, compile_s = local_cluster(n, methods)
        try:
            run = timed_build(base.with_(data_dir=root / f"cluster{n}", scheduler=cluster.scheduler_address),
                              args.items, methods, dims)
        finally:
            client.close()
            cluster.close()
        out["cluster"].append({"workers": n, **run, "warm_up_seconds_per_worker_untimed": compile_s})
    one = out["cluster"][0]["reduce_seconds"]
    for run in out["cluster"]:
        run["reduce_speedup_vs_first"] = round(one / run["reduce_seconds"], 2) if run["reduce_seconds"] else None
    return out


def growth(root: Path, args, methods: list[str]) -> dict:
    """Reduce seconds on the cluster for 3 head counts and 3 token counts, with no more workers
    than cores, so that wall seconds x busy workers / heads is what one head costs one core
    (reading its vectors, the fit, the quality scores, writing)."""
    workers = min(max(args.workers), os.cpu_count() or 1)
    cluster, client, _ = local_cluster(workers, methods)
    here = Cluster(client, cluster.scheduler_address)
    rows = []
    try:
        sizes = [(h, args.tokens[0]) for h in args.heads] + [(args.heads[0], t) for t in args.tokens[1:]]
        for heads, tokens in sizes:
            path = synthetic_atlas(root / f"syn-h{heads}-t{tokens}", 1, heads, tokens, layouts=False)
            for method in methods:
                busy = 1 if REDUCERS[method].batched_on("cpu") else min(workers, heads)  # batched: one task a layer
                t0 = time.perf_counter()
                reduce_layout(path, Layout(method, 2), cluster=here)
                seconds = time.perf_counter() - t0
                rows.append({"method": method, "heads": heads, "tokens": tokens, "points_per_head": 2 * tokens,
                             "seconds": round(seconds, 2), "core_seconds_per_head": round(seconds * busy / heads, 4)})
    finally:
        client.close()
        cluster.close()
    return {"workers": workers, "dim": 2, "rows": rows}


def token_exponent(rows: list[dict], method: str, heads: int) -> tuple[float, dict] | None:
    """Least-squares slope of log(core seconds per head) against log(tokens) at `heads`, and the
    largest row it was fitted on."""
    pts = sorted((r["tokens"], r["core_seconds_per_head"], r) for r in rows
                 if r["method"] == method and r["heads"] == heads and r["core_seconds_per_head"] > 0)
    if len(pts) < 2:
        return None
    xs, ys = [math.log(t) for t, _, _ in pts], [math.log(s) for _, s, _ in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, pts[-1][2]


def estimate(grown: dict, layers: int, heads: int, tokens: int, dims: list[int], workers: list[int]) -> dict:
    """On paper: seconds per head at `tokens`, extrapolated from the measured growth with tokens
    (a power law through the 3 sizes), times every head and dim, over N workers."""
    out = {"model": f"{layers} x {heads}", "tokens": tokens, "dims": dims,
           "assumptions": ["per-head cost follows the power law fitted to the 3 measured token sizes (a long "
                           "extrapolation: treat as an order of magnitude)",
                           "3-D costs what 2-D does (measured 2-D only)",
                           "heads are independent: N workers divide the time (scheduling costs ms per task)",
                           "one worker = one CPU core of this machine; a GPU worker's batched UMAP is not measured "
                           "here",
                           f"the vectors alone are {layers * heads * tokens * 64 * 2 * 2 / 1e9:.0f} GB as float16 on "
                           "the shared store; one head's joint cloud in a worker is "
                           f"{2 * tokens * 64 * 4 / 1e9:.1f} GB as float32"]}
    for method in sorted({r["method"] for r in grown["rows"]}):
        fit = token_exponent(grown["rows"], method, grown["rows"][0]["heads"])
        if fit is None:
            continue
        slope, last = fit
        per_head = last["core_seconds_per_head"] * (tokens / last["tokens"]) ** slope
        core_hours = per_head * layers * heads * len(dims) / 3600
        out[method] = {"token_exponent": round(slope, 2), "seconds_per_head_one_core": float(f"{per_head:.3g}"),
                       "core_hours": round(core_hours, 1),
                       "hours_on": {str(n): round(core_hours / n, 2) for n in workers}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="12x12", help="layers x heads of the whole-atlas model")
    ap.add_argument("--items", type=int, default=100, help="sentences of the bundled corpus to capture")
    ap.add_argument("--methods", default="pca,umap")
    ap.add_argument("--dims", default="2")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--heads", default="12,24,48", help="3 head counts for the growth run")
    ap.add_argument("--tokens", default="1000,2000,4000", help="3 token counts for the growth run")
    ap.add_argument("--growth-methods", default="pca,umap,tsne")
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    layers, heads = (int(x) for x in args.shape.split("x"))
    args.workers = [int(x) for x in args.workers.split(",")]
    args.heads = [int(x) for x in args.heads.split(",")]
    args.tokens = [int(x) for x in args.tokens.split(",")]
    methods, dims = args.methods.split(","), [int(d) for d in args.dims.split(",")]
    result = {"bench": "scale", "cpus": os.cpu_count(),
              "note": f"workers are processes on this machine's {os.cpu_count()} cores: beyond that many, more "
                      "workers share the same cores and cannot be faster"}
    with recorded(result), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = Settings(data_dir=root, catalog_dir=catalog(root / "catalog", layers, heads), workers=0)
        result["whole_atlas"] = {"model": f"random GPT-2 {layers} x {heads}", "items": args.items,
                                 "methods": methods, "dims": dims, **whole_atlas(root, base, args, methods, dims)}
        result["growth"] = growth(root, args, args.growth_methods.split(","))
        result["estimate"] = estimate(result["growth"], 32, 32, 1_000_000, [2, 3], [8, 32, 128])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
