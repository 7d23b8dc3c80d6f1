"""What the statistics stage costs a build: its seconds against the PCA 2-D layout of the same
atlas (the first screen's work), measured in the same run.

    python bench/stats.py [--models minilm,smollm2,dinov2-small] [--limit N] [--device cpu]

Each model is built once (capture + PCA 2-D) into a temporary data dir; then, on that atlas,
the PCA 2-D layout is fitted again from scratch (the baseline), the statistics and the head map
are computed again from scratch, and the induction probe is run again on the loaded model
(causal models; a build runs it while capturing). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from qkatlas.build import build
from qkatlas.capture.loader import load_model
from qkatlas.catalog import get_model
from qkatlas.layout import Layout
from qkatlas.reduce.run import reduce_layout
from qkatlas.settings import Settings
from qkatlas.stats_run import compute_stats, measure_induction
from qkatlas.store import STATS_FILE, Atlas, projection_dir

from machine import recorded  # bench/machine.py

PCA_2D = Layout("pca", 2)


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3), out


def measure(settings: Settings, model: str, limit: int | None, device: str) -> dict:
    entry = get_model(settings, model)
    corpus = "images" if entry.modality == "image" else "default"
    path = Atlas(build(settings, model, corpus, limit, ["pca"], [2], device)).path
    atlas = Atlas(path)
    shutil.rmtree(projection_dir(path, PCA_2D))
    pca_wall, pca_cpu, _ = timed(lambda: reduce_layout(path, PCA_2D, device=device, workers=settings.workers))
    (path / STATS_FILE).unlink()
    stats_wall, stats_cpu, done = timed(lambda: compute_stats(settings, path))
    out = {"model": model, "items": atlas.manifest.corpus.items, "tokens": atlas.n_tokens,
           "heads": atlas.total_heads, "pca_2d_seconds": pca_wall, "pca_2d_cpu_seconds": pca_cpu,
           "stats_seconds": stats_wall, "stats_cpu_seconds": stats_cpu,
           "stats_over_pca_2d": round(stats_wall / max(pca_wall, 1e-9), 2),
           "sample": done.stats_meta()["sample"], "capture_seconds": atlas.manifest.capture_seconds}
    if atlas.causal:
        loaded = load_model(entry, settings, device)
        wall, cpu, _ = timed(lambda: measure_induction(loaded, settings.batch_size))
        out |= {"induction_probe_seconds": wall, "induction_probe_cpu_seconds": cpu}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,smollm2,dinov2-small")
    ap.add_argument("--limit", type=int, default=None, help="items per corpus (default: the whole corpus; "
                                                            "images: 40)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0, help="PCA processes (default: one per core)")
    args = ap.parse_args()
    report: dict = {"what": "statistics stage vs PCA 2-D layout of the same atlas, seconds"}
    with tempfile.TemporaryDirectory() as tmp, recorded(report):
        settings = Settings(data_dir=Path(tmp), workers=args.workers)
        results = []
        for model in args.models.split(","):
            limit = args.limit or (40 if get_model(settings, model).modality == "image" else None)
            results.append(measure(settings, model, limit, args.device))
        report["results"] = results
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
