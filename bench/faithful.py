"""How far distance follows attention in each joint space: raw q/k, AttentionViz's transform and
qkatlas's (docs/faithful.md), on real weights, in the joint space and in its PCA 2-D layout.

    python bench/faithful.py [--models minilm,dinov2-small,smollm2] [--limit N] [--umap-heads N]
                             [--data-dir DIR] [--device cpu]

Each model is built once (capture, the qkatlas joint choice, PCA 2-D) on its default corpus
(sentences; images for DINOv2) into a temporary data dir (or --data-dir, where a finished build
is reused). Then for every head, from the stored vectors, the three joint spaces are scored on
the build's sample of (query, key) pairs: raw q/k (t = 0, s = 1), AttentionViz's (means together,
equal mean norms) and the stored qkatlas choice; each is also reduced to 2-D with the PCA the
build uses and scored there (and with UMAP on --umap-heads evenly spaced heads). Measures
(agreement.py): attention_agreement, the mean over queries of Spearman(-distance, q·k) over the
keys each sees (higher is better), and distance_dot_pearson, the issue's pooled Pearson of
distance with q·k over the pairs of each item (-1 is perfect); both averaged over heads. The
qkatlas search is timed on the stored vectors against AttentionViz's rule, in the same run.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from qkatlas.agreement import AGREEMENT_MEASURES, agreement, contexts, scores
from qkatlas.build import build
from qkatlas.catalog import get_model
from qkatlas.joint import attentionviz_transform, joint_transforms, to_joint
from qkatlas.reduce.methods import make_reducer
from qkatlas.settings import Settings
from qkatlas.store import Atlas

from machine import recorded  # bench/machine.py

TRANSFORMS = ("raw", "attentionviz", "qkatlas")


def transform(atlas: Atlas, name: str, layer: int, head: int, q: np.ndarray, k: np.ndarray):
    if name == "raw":
        return np.zeros(q.shape[1], dtype=np.float32), 1.0
    if name == "attentionviz":
        return attentionviz_transform(q, k)
    return atlas.joint_transform(layer, head)  # the build's qkatlas choice


def score(points: np.ndarray, S: np.ndarray, ctx) -> dict:
    n = len(points) // 2
    got = agreement(points[:n], points[n:], S, ctx)
    return {m: got.get(m, float("nan")) for m in AGREEMENT_MEASURES}


def measure(settings: Settings, model: str, limit: int | None, device: str, umap_heads: int) -> dict:
    entry = get_model(settings, model)
    corpus = "images" if entry.modality == "image" else "default"
    t0 = time.perf_counter()
    atlas = Atlas(build(settings, model, corpus, limit, ["pca"], [2], device))
    build_seconds = round(time.perf_counter() - t0, 1)
    ctx = contexts(atlas.item_offsets, atlas.causal, seed=atlas.manifest.seed)
    heads = [(layer, head) for layer in range(atlas.layers) for head in range(atlas.heads)]
    umap_at = set(heads[i] for i in np.linspace(0, len(heads) - 1, umap_heads).astype(int)) if umap_heads else set()
    spaces = ("joint", "pca_2d") + (("umap_2d",) if umap_at else ())
    rows = {space: {name: [] for name in TRANSFORMS} for space in spaces}
    changed = 0
    for layer, head in heads:
        q, k = atlas.head_vectors(layer, head)
        S = scores(q, k, ctx)
        for name in TRANSFORMS:
            t, s = transform(atlas, name, layer, head, q, k)
            X = to_joint(q, k, t, s)
            rows["joint"][name].append(score(X, S, ctx))
            rows["pca_2d"][name].append(score(make_reducer("pca", 2, settings.seed).fit_transform(X), S, ctx))
            if (layer, head) in umap_at:
                rows["umap_2d"][name].append(score(make_reducer("umap", 2, settings.seed).fit_transform(X), S, ctx))
        t, s = atlas.joint_transform(layer, head)
        changed += bool(s != 1.0 or np.any(t != 0))

    out = {"model": model, "corpus": corpus, "items": atlas.manifest.corpus.items, "tokens": atlas.n_tokens,
           "heads": len(heads), "sampled_queries": int(len(ctx.query)), "sampled_pairs": ctx.pairs,
           "qkatlas_heads_not_raw": changed, "build_seconds": build_seconds}
    for space in spaces:
        out[space] = {name: {m: round(float(np.nanmean([r[m] for r in rows[space][name]])), 3)
                             for m in AGREEMENT_MEASURES} for name in TRANSFORMS}
        raw, ours = rows[space]["raw"], rows[space]["qkatlas"]
        # heads where qkatlas is worse than raw q/k by more than rounding, per measure
        out[space]["qkatlas_heads_worse_than_raw"] = {
            "attention_agreement": sum(o["attention_agreement"] < r["attention_agreement"] - 1e-3 for o, r in zip(ours, raw)),
            "distance_dot_pearson": sum(o["distance_dot_pearson"] > r["distance_dot_pearson"] + 1e-3 for o, r in zip(ours, raw))}
    if umap_at:
        out["umap_2d"]["heads"] = len(umap_at)
    out |= timing(atlas, ctx)
    return out


def timing(atlas: Atlas, ctx) -> dict:
    """Seconds to choose every head's joint transform from the stored vectors: qkatlas's search against
    AttentionViz's closed form (each with its scoring against raw q/k)."""
    out = {}
    for method in ("attentionviz", "qkatlas"):
        t0 = time.perf_counter()
        for layer in range(atlas.layers):
            joint_transforms(atlas.queries(layer), atlas.keys(layer), ctx, method)
        out[f"{method}_choice_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="minilm,dinov2-small,smollm2")
    ap.add_argument("--limit", type=int, default=None, help="items of each default corpus (default: all)")
    ap.add_argument("--umap-heads", type=int, default=0, help="also score UMAP 2-D on this many heads per model")
    ap.add_argument("--data-dir", type=Path, default=None, help="build (or reuse) the atlases here")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    result = {"limit": args.limit, "models": []}
    with tempfile.TemporaryDirectory(prefix="qkatlas-faithful-") as tmp, recorded(result):
        settings = Settings.from_env(data_dir=args.data_dir or Path(tmp), joint="qkatlas")
        for model in args.models.split(","):
            result["models"].append(measure(settings, model, args.limit, args.device, args.umap_heads))
            print(json.dumps(result["models"][-1]), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
