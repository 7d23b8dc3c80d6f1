"""Head statistics: every head's row (JSON columns or a CSV / Parquet file) and the map of heads."""

from __future__ import annotations

from ...export import table_bytes
from ...headmap import nearest
from ..served import ServedAtlas

META = ("version", "definitions", "thresholds", "distance_unit", "sample", "seconds")


def stats_answer(served: ServedAtlas) -> dict:
    """Every head's statistics as columns, with what each one means and the label rules."""
    table, meta = served.stats()
    return {"atlas": served.id, "n": table.num_rows, "columns": table.to_pydict(),
            **{k: meta.get(k) for k in META}}


def stats_file(served: ServedAtlas, fmt: str) -> tuple[bytes, str]:
    """(the statistics as a `fmt` file, its file name)."""
    table, _ = served.stats()
    return table_bytes(table, fmt), f"{served.id}-stats.{fmt}"


def headmap_answer(served: ServedAtlas, neighbours: int) -> dict:
    """Every head as a point of the map, with its label, statistics and its nearest heads."""
    table, meta = served.stats()
    m = served.headmap()
    coords, distance = m["coords"], m["distance"]
    heads = served.manifest.heads
    points = []
    for i, row in enumerate(table.to_pylist()):
        layer, head = row.pop("layer"), row.pop("head")
        kind, label = row.pop("kind"), row.pop("label")
        points.append({"layer": layer, "head": head, "x": float(coords[i, 0]), "y": float(coords[i, 1]),
                       "kind": kind, "label": label, "stats": row,
                       "nearest": [{"layer": j // heads, "head": j % heads, "distance": round(d, 6)}
                                   for j, d in nearest(distance, i, neighbours)]})
    about = meta.get("headmap", {})
    return {"atlas": served.id, "layers": served.manifest.layers, "heads": heads,
            "distance": about.get("distance", ""), "method": about.get("method", ""),
            "fit": {k: about.get(k) for k in ("stress", "correlation", "items", "rows")},
            "points": points}
