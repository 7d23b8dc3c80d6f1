"""A map of heads: how alike every two heads of a model attend, and those distances drawn in 2-D.

Pure functions. Two heads are compared on the same queries (a fixed sample of the corpus's
items): the distance is the Hellinger distance between their attention rows, averaged over
the rows as a squared distance,

    D(h, g)² = 1 - (1/R) Σ_rows Σ_keys √(p_h · p_g)        (0: the same attention, 1: disjoint)

so the whole matrix is one product of the heads' square-rooted rows. Metric MDS (scikit-learn's
SMACOF) places the heads in 2-D with those distances.
"""

from __future__ import annotations

import numpy as np

from .stats import visible

MAX_ENTRIES = 40_000  # attention entries per head in the sample: 270 heads hold 43 MB of float32


def map_rows(lengths: np.ndarray, items: np.ndarray, max_entries: int = MAX_ENTRIES) -> dict[int, np.ndarray]:
    """{item: query rows} for the sampled `items` (item lengths `lengths`): every row, or an even
    subset of each item's rows when all of them would hold more than `max_entries` entries."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int((lengths[items] ** 2).sum())
    keep = min(1.0, max_entries / max(total, 1))
    out = {}
    for i in items:
        n = int(lengths[i])
        m = max(1, int(n * keep))
        out[int(i)] = np.unique((np.arange(m) * n) // m)
    return out


def root_rows(att: np.ndarray, rows: np.ndarray, causal: bool) -> np.ndarray:
    """att (heads, n, n) of one item -> (heads, len(kept) * n) float32: √attention of the chosen
    rows that see at least two keys (a row that sees one key is the same for every head)."""
    n = att.shape[-1]
    kept = rows[visible(n, causal)[rows].sum(axis=1) >= 2]
    return np.sqrt(att[:, kept]).reshape(att.shape[0], -1).astype(np.float32)


def row_count(rows: dict[int, np.ndarray], lengths: np.ndarray, causal: bool) -> int:
    """How many rows root_rows keeps over the sample (R in the distance)."""
    return sum(int((visible(int(lengths[i]), causal)[r].sum(axis=1) >= 2).sum()) for i, r in rows.items())


def head_distances(roots: np.ndarray, rows: int) -> np.ndarray:
    """roots (heads, F): every head's √attention rows side by side -> (heads, heads) Hellinger distances."""
    roots = np.asarray(roots, dtype=np.float32)  # float32 products: the distances are drawn, not compared to 1e-7
    affinity = (roots @ roots.T).astype(np.float64) / max(rows, 1)
    d = np.sqrt(np.clip(1.0 - affinity, 0.0, 1.0))
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2


def head_map(distance: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(coords (heads, 2) float32, fit): metric MDS of `distance`. fit: the normalised stress
    and the correlation between the map's distances and the heads' distances."""
    from sklearn.manifold import smacof  # 2.6 s to import: only when a map is drawn

    n = len(distance)
    if n < 3:  # MDS needs three points; two heads lie on a line at their distance
        coords = np.zeros((n, 2))
        if n == 2:
            coords[1, 0] = distance[0, 1]
        return coords.astype(np.float32), {"stress": 0.0, "correlation": 1.0}
    coords, stress = smacof(distance, n_components=2, init=classical_mds(distance), n_init=1, random_state=seed,
                            normalized_stress=True)
    upper = np.triu_indices(n, 1)
    drawn = np.linalg.norm(coords[:, None] - coords[None, :], axis=-1)[upper]
    corr = float(np.corrcoef(drawn, distance[upper])[0, 1]) if distance[upper].std() > 0 else 1.0
    return coords.astype(np.float32), {"stress": round(float(stress), 4), "correlation": round(corr, 4)}


def classical_mds(distance: np.ndarray, dims: int = 2) -> np.ndarray:
    """(heads, dims): Torgerson's classical scaling, the start SMACOF refines (one deterministic
    start instead of several random ones)."""
    n = len(distance)
    centre = np.eye(n) - 1.0 / n
    gram = -0.5 * centre @ (distance.astype(np.float64) ** 2) @ centre
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dims]
    return vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))


def nearest(distance: np.ndarray, index: int, k: int) -> list[tuple[int, float]]:
    """The k heads nearest head `index` (flat index), nearest first, itself left out."""
    order = [int(j) for j in np.argsort(distance[index], kind="stable") if j != index]
    return [(j, float(distance[index, j])) for j in order[:k]]
