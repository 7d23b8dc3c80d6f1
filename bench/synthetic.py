"""Synthetic atlases of any size for the benchmarks: the real folder layout, real sentences
as tokens, clustered random q/k and (optionally) clustered random layouts. Speed depends on
sizes, not on the weights. Reused when a folder of the same size already exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from qkatlas.corpus import load_corpus
from qkatlas.layout import Layout
from qkatlas.manifest import CorpusBlock, LayoutState, Manifest, ModelBlock, manifest_exists, read_manifest
from qkatlas.store import AtlasWriter


def clustered(rng: np.random.Generator, points: int, dim: int, clusters: int = 40) -> np.ndarray:
    """(points, dim) float32: a mixture of Gaussian clusters, the shape of a head's joint cloud."""
    centres = rng.normal(size=(clusters, dim)) * 4
    return (centres[rng.integers(0, clusters, points)] + rng.normal(size=(points, dim))).astype(np.float32)


def _token_table(tokens: int) -> tuple[dict, list[str]]:
    rows = {"item": [], "position": [], "text": [], "special": [], "row": [], "col": []}
    items: list[str] = []
    sentences = [it.text for it in load_corpus("default", "text").items]
    while len(rows["item"]) < tokens:
        words = sentences[len(items) % len(sentences)].split()[: tokens - len(rows["item"])]
        for p, w in enumerate(words):
            rows["item"].append(len(items))
            rows["position"].append(p)
            rows["text"].append(w if p == 0 else f" {w}")
            rows["special"].append(False)
            rows["row"].append(-1)
            rows["col"].append(-1)
        items.append(" ".join(words))
    return rows, items


def synthetic_atlas(folder: Path, layers: int, heads: int, tokens: int, head_dim: int = 64,
                    layouts: bool = True, seed: int = 0) -> Path:
    spec = {"layers": layers, "heads": heads, "tokens": tokens, "head_dim": head_dim}
    if manifest_exists(folder):
        m = read_manifest(folder)
        if all(getattr(m, k) == v for k, v in spec.items()):
            return folder
    rng = np.random.default_rng(seed)
    rows, items = _token_table(tokens)
    w = AtlasWriter(folder)
    w.write_tokens(pa.table({"token": np.arange(tokens), **rows}))
    w.write_items(pa.table({"item": np.arange(len(items)), "text": items, "image": [""] * len(items),
                            "label": [f"synthetic:{i + 1}" for i in range(len(items))]}))
    for layer in range(layers):
        qk = np.stack([clustered(rng, 2 * tokens, head_dim) for _ in range(heads)], axis=1)
        w.write_vectors(layer, qk[:tokens], qk[tokens:], scaling=head_dim ** -0.5)
    w.write_joint(np.zeros((layers, heads, head_dim)), np.ones((layers, heads)))
    for layer in range(layers if layouts else 0):
        for head in range(heads):
            coords = clustered(rng, 2 * tokens, 3, clusters=8) / 4
            for dim in (2, 3):
                meta = {"params": {}, "quality": {"knn_recall@10": float(rng.uniform(0.1, 0.5)),
                                                  "trustworthiness@10": float(rng.uniform(0.7, 0.95))},
                        "seconds": 0.0, "points": 2 * tokens}
                w.write_projection(layer, head, Layout("pca", dim), np.ascontiguousarray(coords[:, :dim]), meta)
    w.write_manifest(Manifest(
        **spec, atlas=folder.name, causal=True, scaling=[head_dim ** -0.5] * layers,
        model=ModelBlock(id="synthetic", label=f"synthetic {layers}x{heads} (random)", family="gpt2",
                         modality="text", random=True, loader="random", notes="benchmark data",
                         weights="random init"),
        corpus=CorpusBlock(id="default", modality="text", hash="synthetic", items=len(items),
                           source="bundled sentences.txt, repeated"),
        created="1970-01-01T00:00:00+00:00", seed=seed, stages={"capture": "done"},
        reductions={f"pca-{d}d": LayoutState(method="pca", dim=d, seed=seed, complete=True)
                    for d in ((2, 3) if layouts else ())},
    ))
    return folder
