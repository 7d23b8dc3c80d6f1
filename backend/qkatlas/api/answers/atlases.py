"""An atlas's summary (the list; a damaged atlas is listed as such) and its detail (summary,
quality, image grid, scaling).

What the server's files are called on its disk and which library versions it runs are not
told: an absolute path is named by its last part, and the manifest's versions stay in the
manifest (`qkatlas info` shows them).
"""

from __future__ import annotations

import os
from pathlib import PurePath

from ...layout import ALL
from ..registry import AtlasState
from ..served import ServedAtlas


def public(block: dict) -> dict:
    """`block` with every absolute path (model weights, a corpus file) named by its last part;
    hub ids, relative paths and other values as they are."""
    return {k: PurePath(v).name if isinstance(v, str) and (os.path.isabs(v) or v.startswith("~")) else v
            for k, v in block.items()}


def summary(served: ServedAtlas) -> dict:
    m = served.manifest
    progress = served.progress()
    return {
        "id": served.id,
        "status": "ok",
        "model": public(m.model.model_dump()),
        "corpus": public(m.corpus.model_dump(exclude={"hash"})),
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


def listed(state: AtlasState) -> dict:
    """An atlas as the list shows it: its summary, or what keeps it from being served."""
    if state.damage is not None:
        return {"id": state.name, "status": "damaged", "detail": str(state.damage)}
    return summary(state.served)


def detail(served: ServedAtlas) -> dict:
    m = served.manifest
    quality = {layout.key: scores for layout in ALL if (scores := served.quality(layout))}
    return {**summary(served), "quality": quality, "image": m.image and m.image.model_dump(), "scaling": m.scaling,
            "created": m.created}
