"""The default demo's build from an empty data dir, step by step, in the demo's own order
(`qkatlas.demo.plan`): when each default atlas's layouts are ready after `make run` starts.

    python bench/demo.py                                   # PCA 2-D/3-D of every default atlas, then UMAP
                                                           # 2-D/3-D of one layer per atlas (sampled)
    python bench/demo.py --sample-layers 0,1 --methods pca,umap,tsne

Every PCA step is the demo's whole step. Slower methods run on `--sample-layers` only, and the
whole atlas's time is estimated from those heads (per-head seconds x heads / worker processes);
the JSON says which figures are measured and which estimated. Absolute seconds on this machine,
with its load average before and after (bench/machine.py): there is no baseline to divide by,
so read them beside the load. A model's converted GGUF in QKATLAS_CACHE_DIR makes its load
fast; `gguf_cache_warm` says whether it was there. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import recorded

from qkatlas.build import build
from qkatlas.capture import hub
from qkatlas.capture.gguf import converted_folder
from qkatlas.catalog import get_model
from qkatlas.demo import plan
from qkatlas.layout import Layout
from qkatlas.reduce.executor import plan_workers
from qkatlas.settings import Settings
from qkatlas.store import Atlas


def per_head_seconds(path: Path, layout: Layout) -> list[float]:
    """Each written head's own fitting seconds, from its projection's .json."""
    atlas = Atlas(path)
    return [atlas.projection_meta(layer, head, layout)["seconds"]
            for layer in range(atlas.layers) for head in range(atlas.heads)
            if atlas.has_projection(layer, head, layout)]


def gguf_cache_warm(settings: Settings, model: str) -> bool | None:
    """Whether the cache holds this model's converted GGUF file (None: `model` is no GGUF)."""
    entry = get_model(settings, model)
    if not entry.gguf_file:
        return None
    source = hub.resolve(settings, entry.local, entry.source)
    return converted_folder(hub.model_file(entry, settings, source, entry.gguf_file)).is_dir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="pca,umap", help="the demo's methods (QKATLAS_DEMO_METHODS)")
    ap.add_argument("--sample-layers", default="0", help="layers that the methods after the first are fitted on")
    ap.add_argument("--data-dir", default=None, help="default: a fresh temporary folder")
    args = ap.parse_args()

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="qkatlas-demo-bench-"))
    settings = Settings.from_env().with_(data_dir=data_dir, demo_methods=args.methods)
    steps = plan(settings)
    cheapest = steps[0].method
    out: dict = {"bench": "demo", "data_dir": str(data_dir), "methods": args.methods,
                 "sample_layers": args.sample_layers, "steps": [],
                 "gguf_cache_warm": {m: gguf_cache_warm(settings, m) for m in dict.fromkeys(s.model for s in steps)}}
    with recorded(out):
        t0 = time.perf_counter()
        for step in steps:
            sampled = step.method != cheapest
            s0 = time.perf_counter()
            path = build(settings, step.model, step.corpus, step.limit, [step.method], [step.dim],
                         layers=args.sample_layers if sampled else None)
            atlas = Atlas(path)
            layout = Layout(step.method, step.dim)
            seconds = per_head_seconds(path, layout)
            heads = atlas.layers * atlas.heads
            processes, _ = plan_workers(settings.workers, heads)
            row = {"atlas": path.name, "layout": layout.key, "tokens": atlas.n_tokens,
                   "heads_written": len(seconds), "heads": heads,
                   "step_seconds": round(time.perf_counter() - s0, 1),
                   "ready_after_seconds": round(time.perf_counter() - t0, 1),
                   "mean_head_seconds": round(sum(seconds) / max(1, len(seconds)), 3)}
            if sampled:
                row["whole_atlas_seconds_estimate"] = round(row["mean_head_seconds"] * heads / processes, 1)
            out["steps"].append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
