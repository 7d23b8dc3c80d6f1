"""What an atlas holds, as plain JSON: the manifest plus computed projections and their quality."""

from __future__ import annotations

from pathlib import Path

from .settings import Settings
from .store import DIMS, METHODS, Atlas, open_atlas


def atlas_info(settings: Settings, name: str, layer: int | None = None, head: int | None = None) -> dict:
    path = Path(name)
    atlas = Atlas(path) if (path / "manifest.json").is_file() else open_atlas(settings.data_dir, _name(name))
    out = dict(atlas.manifest)
    out["path"] = str(atlas.path)
    out["projections"] = atlas.available_projections()
    if layer is None and head is None:
        out["quality"] = {key: _mean_quality(atlas, key) for key in out["projections"]}
        return out
    atlas.check_head(layer or 0, head or 0)
    out["head"] = {"layer": layer or 0, "head": head or 0, "projections": {}}
    for method in METHODS:
        for dim in DIMS:
            if f"L{layer or 0:02d}H{head or 0:02d}" in atlas.quality_table(method, dim):
                meta = atlas.projection_meta(layer or 0, head or 0, method, dim)
                out["head"]["projections"][f"{method}-{dim}d"] = {k: meta[k] for k in ("params", "quality", "seconds")}
    return out


def _name(name: str) -> str:
    # Accept the folder path that `qkatlas build` prints as well as the bare atlas name.
    return name.rstrip("/").rsplit("/", 1)[-1]


def _mean_quality(atlas, key: str) -> dict:
    method, dim = key.split("-")
    table = atlas.quality_table(method, int(dim[:-1]))
    scores: dict[str, list[float]] = {}
    for q in table.values():
        for k, v in q.items():
            if k != "sample":
                scores.setdefault(k, []).append(v)
    return {"heads": len(table), **{f"mean {k}": round(sum(v) / len(v), 4) for k, v in scores.items()}}
