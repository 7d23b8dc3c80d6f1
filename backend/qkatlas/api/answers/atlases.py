"""An atlas's summary (the list) and its detail (summary, quality, image grid, scaling, versions)."""

from __future__ import annotations

from ...layout import ALL
from ..served import ServedAtlas


def summary(served: ServedAtlas) -> dict:
    m = served.manifest
    progress = served.progress()
    return {
        "id": served.id,
        "model": m.model.model_dump(),
        "corpus": m.corpus.model_dump(exclude={"hash"}),
        "layers": m.layers,
        "heads": m.heads,
        "head_dim": m.head_dim,
        "kv_heads": served.kv_heads,
        "tokens": m.tokens,
        "causal": m.causal,
        "modality": m.modality,
        "projections": progress,
        "complete": {key: done == m.total_heads for key, done in progress.items()},
        "total_heads": m.total_heads,
    }


def detail(served: ServedAtlas) -> dict:
    m = served.manifest
    quality = {layout.key: scores for layout in ALL if (scores := served.quality(layout))}
    return {**summary(served), "quality": quality, "image": m.image and m.image.model_dump(), "scaling": m.scaling,
            "versions": m.versions, "created": m.created}
