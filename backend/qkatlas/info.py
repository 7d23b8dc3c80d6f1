"""What an atlas holds, as plain JSON: the manifest plus computed projections and their quality."""

from __future__ import annotations

from pathlib import Path

from .layout import ALL
from .manifest import manifest_exists
from .settings import Settings
from .store import Atlas, open_atlas


def open_named(settings: Settings, name: str) -> Atlas:
    """The atlas a person named: an atlas folder, or an atlas id (or a path ending in one) in the data dir."""
    path = Path(name)
    return Atlas(path) if manifest_exists(path) else open_atlas(settings.data_dir, _name(name))


def atlas_info(settings: Settings, name: str) -> dict:
    """The atlas id (what the API and the browser call it), its folder, manifest, layouts and mean quality."""
    atlas = open_named(settings, name)
    progress = atlas.progress()
    return {"id": atlas.id, "path": str(atlas.path), **atlas.manifest.model_dump(mode="json"),
            "projections": progress,
            "quality": {layout.key: _mean_quality(atlas.quality_table(layout))
                        for layout in ALL if layout.key in progress}}


def head_info(settings: Settings, name: str, layer: int, head: int) -> dict:
    """One head's layouts: params, quality and seconds of each."""
    atlas = open_named(settings, name)
    atlas.check_head(layer, head)
    layouts = {}
    for layout in ALL:
        meta = atlas.projection_meta(layer, head, layout)
        if meta is not None:
            layouts[layout.key] = {k: meta.get(k) for k in ("params", "quality", "seconds")}
    return {"atlas": atlas.id, "layer": layer, "head": head, "projections": layouts}


def _name(name: str) -> str:
    # Accept the folder path that `qkatlas build` prints as well as the bare atlas name.
    return name.rstrip("/").rsplit("/", 1)[-1]


def _mean_quality(table: dict[str, dict]) -> dict:
    scores: dict[str, list[float]] = {}
    for q in table.values():
        for k, v in q.items():
            if k != "sample":
                scores.setdefault(k, []).append(v)
    return {"heads": len(table), **{f"mean {k}": round(sum(v) / len(v), 4) for k, v in scores.items()}}
