"""What an atlas holds, as plain JSON: the manifest plus computed projections and their quality."""

from __future__ import annotations

from pathlib import Path

from .layout import ALL
from .manifest import manifest_exists
from .settings import Settings
from .store import Atlas, open_atlas


def atlas_info(settings: Settings, name: str, layer: int | None = None, head: int | None = None) -> dict:
    path = Path(name)
    atlas = Atlas(path) if manifest_exists(path) else open_atlas(settings.data_dir, _name(name))
    out = atlas.manifest.model_dump(mode="json")
    out["path"] = str(atlas.path)
    out["projections"] = atlas.progress()
    if layer is None and head is None:
        out["quality"] = {layout.key: _mean_quality(atlas.quality_table(layout))
                          for layout in ALL if layout.key in out["projections"]}
        return out
    atlas.check_head(layer or 0, head or 0)
    out["head"] = {"layer": layer or 0, "head": head or 0, "projections": {}}
    for layout in ALL:
        meta = atlas.projection_meta(layer or 0, head or 0, layout)
        if meta is not None:
            out["head"]["projections"][layout.key] = {k: meta.get(k) for k in ("params", "quality", "seconds")}
    return out


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
