"""Live input placed into one head's PCA, UMAP and t-SNE layouts, through the API in-process;
prints one JSON object.

    python bench/live.py                                   # MiniLM, 100 default sentences, L2 H3
    python bench/live.py --model tiny-gpt2 --limit 40      # no real weights needed

The atlas is captured with PCA, then the UMAP and t-SNE 2-D layouts of two heads (H and H+1)
are fitted in a child process, so this process starts as a fresh server does: nothing of
umap-learn's numba code compiled. Then one text (not from the corpus) is posted with layer and
head, per method: the first call into head H (for UMAP the server first answers 503 while it
compiles umap-learn's numba code in the background, as a fresh server does; the bench retries
and reports that wait as `warm_up_wait_s`; then the estimator is rebuilt), the first call into
head H+1 (a rebuild alone), then `--repeat` calls into head H
(the estimator kept in the API's LRU). Each figure is the answer's own `points.seconds`, the
time to place that head's points (the model's forward pass is not in it); `placer_mb` is what
the kept estimator is counted as in the LRU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from machine import recorded  # bench/machine.py

from qkatlas.layout import Layout

TEXT = "A small brown dog chased the red ball across the quiet garden at dusk."
METHODS = ("pca", "umap", "tsne")


def prepare(data_dir: Path, model: str, limit: int, heads: list[tuple[int, int]]) -> str:
    """Capture the atlas with PCA 2-D and fit UMAP and t-SNE 2-D for `heads`; its name."""
    from qkatlas.build import build
    from qkatlas.reduce.run import reduce_layout
    from qkatlas.settings import Settings

    path = build(Settings(data_dir=data_dir, workers=1), model, "default", limit=limit, methods=["pca"], dims=[2])
    for method in ("umap", "tsne"):
        reduce_layout(path, Layout(method, 2), heads, workers=1)
    return path.name


def in_child(*args) -> str:
    """`prepare` in a spawned process, so that this one compiles nothing of umap-learn's."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(prepare, *args).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--limit", type=int, default=100, help="default-corpus sentences")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--head", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5, help="cached calls per method")
    ap.add_argument("--data-dir", type=Path, help="where the atlas is built (kept); a temporary folder by default")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="qkatlas-bench-live-"))
    heads = [(args.layer, args.head), (args.layer, args.head + 1)]

    out: dict = {"model": args.model, "limit": args.limit, "layer": args.layer, "head": args.head, "text": TEXT}
    with recorded(out):
        t0 = time.perf_counter()
        name = in_child(data_dir, args.model, args.limit, heads)
        out["prepare_s"] = round(time.perf_counter() - t0, 1)

        from fastapi.testclient import TestClient

        from qkatlas.api.app import create_app
        from qkatlas.reduce.place import placer, stored_meta
        from qkatlas.reduce.run import joint_cloud
        from qkatlas.settings import Settings
        from qkatlas.store import Atlas

        atlas = Atlas(data_dir / name)
        out["atlas"] = {"id": name, "tokens": atlas.n_tokens, "points_per_head": 2 * atlas.n_tokens,
                        "head_dim": atlas.head_dim}
        client = TestClient(create_app(Settings(data_dir=data_dir)), base_url="http://127.0.0.1")

        def place(method: str, head: int) -> dict:
            """The answer's points; a 503 (the method's placement still warming up, as on a fresh
            server) is retried after its Retry-After, and the wait is returned as `waited_s`."""
            t0, waited = time.perf_counter(), 0.0
            while True:
                r = client.post("/api/attention", json={"atlas": name, "text": TEXT, "layer": args.layer,
                                                        "head": head, "method": method, "dim": 2})
                if r.status_code != 503:
                    break
                time.sleep(min(5.0, float(r.headers.get("retry-after", 1))))
                waited = time.perf_counter() - t0
            r.raise_for_status()
            return r.json()["points"] | {"waited_s": waited}

        place("pca", args.head)  # loads the model: its forward pass is not what is measured
        for method in METHODS:
            first = place(method, args.head)
            other = place(method, args.head + 1)
            kept = [place(method, args.head)["seconds"] for _ in range(args.repeat)]
            layout = Layout(method, 2)
            kept_placer = placer(layout, stored_meta(atlas, *heads[0], layout), lambda: joint_cloud(atlas, *heads[0]),
                                 lambda: atlas.projection(*heads[0], layout))
            out[method] = {"how": first["how"], "tokens_placed": len(first["queries"]),
                           "warm_up_wait_s": round(first["waited_s"], 1),
                           "first_call_s": round(first["seconds"], 3), "first_rebuilt": first["rebuilt"],
                           "other_head_first_call_s": round(other["seconds"], 3),
                           "kept_median_s": round(float(np.median(kept)), 4), "kept_s": [round(s, 4) for s in kept],
                           "placer_mb": round(kept_placer.nbytes / 1e6, 3)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
