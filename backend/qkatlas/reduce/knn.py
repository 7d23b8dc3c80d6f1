"""Each head's nearest-neighbour graph: computed once, kept in the atlas, shared by its layouts.

UMAP (its 15 neighbours) and t-SNE (3 x perplexity = 90, for its affinities), in 2-D and in
3-D, all start from the k nearest neighbours of every point of the head's joint cloud.
umap-learn and openTSNE would each search again for every layout, approximately (NN-descent,
Annoy). Here the search is exact (a blocked matrix product and top-k in torch: on a head of
15k points of 32 dims it costs about what one NN-descent for 15 neighbours does, and it
finds the 90 t-SNE needs as well), runs once per head, and the graph is kept in the atlas as
`knn/L03H07.npz` so that the layout stages, which run one after another and in other
processes, share it, and a killed build reuses it. `drop_graphs` removes the folder once a
build has written every layout (it is ~10 MB per head of 15k points).
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..files import atomic_path
from ..store import head_name

if TYPE_CHECKING:  # torch is imported where it is used: the API imports this module (place -> run) and no torch
    import torch

K = 90  # t-SNE's 3 x perplexity 30; UMAP's 15 and any fewer are the first columns
_BLOCK_BYTES = 1 << 26  # one block of the distance matrix: small blocks stay in cache (measured faster)
_MARGIN = 8  # candidates beyond k, so that rounding in |a|^2 - 2ab + |b|^2 cannot drop a true neighbour


@dataclass(frozen=True)
class Graph:
    """Every point's k nearest other points in the head's joint space, nearest first.

    indices: (points, k) int32; distances: (points, k) float32, ascending. A point is never its
    own neighbour; exact duplicates of it are, at distance 0.
    """

    indices: np.ndarray
    distances: np.ndarray

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def first(self, k: int) -> Graph:
        """The graph of the k nearest neighbours (the first k columns)."""
        return Graph(self.indices[:, :k], self.distances[:, :k])

    def with_self(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) (points, k) in umap-learn's convention: each point first, at
        distance 0, then its k - 1 nearest others."""
        n = len(self.indices)
        own = np.arange(n, dtype=self.indices.dtype)[:, None]
        return (np.hstack([own, self.indices[:, :k - 1]]),
                np.hstack([np.zeros((n, 1), np.float32), self.distances[:, :k - 1]]))


def knn_heads(X: torch.Tensor, k: int, include_self: bool = True,
              block_bytes: int = _BLOCK_BYTES) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours within each head.

    X: (heads, points, features) -> (distances (heads, points, k) float32 ascending, indices
    (heads, points, k) int64 within the head). With `include_self` each point comes first (as
    umap-learn counts it), else it is left out. Candidates come from |a|^2 - 2ab + |b|^2 in
    blocks of about `block_bytes`; the kept distances are then recomputed from differences, so
    they carry no cancellation error and exact duplicates are exactly 0 apart.
    """
    import torch

    H, P, F = X.shape
    X = X.float()
    k = min(k, P if include_self else P - 1)
    pick = min(k + _MARGIN, P)
    sq = (X * X).sum(-1)
    rows = max(1, min(P, block_bytes // (P * 4 * 2)))  # the block and its sum with the norms
    heads = max(1, min(H, block_bytes // (P * P * 4 * 2))) if rows == P else 1
    dist = torch.empty((H, P, k), dtype=torch.float32, device=X.device)
    idx = torch.empty((H, P, k), dtype=torch.int64, device=X.device)
    for h0 in range(0, H, heads):
        hs = slice(h0, min(H, h0 + heads))
        for r0 in range(0, P, rows):
            rs = slice(r0, min(P, r0 + rows))
            q = X[hs, rs]
            d = torch.baddbmm(sq[hs, rs, None] + sq[hs, None, :], q, X[hs].transpose(1, 2), alpha=-2.0)
            own = torch.arange(rs.start, rs.stop, device=X.device)
            d[:, torch.arange(len(own), device=X.device), own] = -torch.inf if include_self else torch.inf
            nn = d.topk(pick, dim=-1, largest=False).indices
            exact = (q[:, :, None, :] - _gather_rows(X[hs], nn)).norm(dim=-1)
            # The point itself first, even where an exact duplicate ties with it at 0; or last, out
            # of the k kept, where a tiny cloud makes it a candidate.
            exact = torch.where(nn == own[None, :, None], -1.0 if include_self else torch.inf, exact)
            exact, order = exact.sort(dim=-1, stable=True)
            dist[hs, rs] = exact[..., :k].clamp_min(0.0)
            idx[hs, rs] = nn.gather(-1, order[..., :k])
    return dist, idx


def _gather_rows(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """points: (heads, P, F), index: (heads, R, k) -> (heads, R, k, F)."""
    h = index.new_tensor(range(points.shape[0]))[:, None, None]
    return points[h, index]


def exact_graph(X: np.ndarray, k: int = K) -> Graph:
    """X: (points, features) -> the Graph of its k nearest neighbours (fewer for tiny clouds)."""
    import torch

    dist, idx = knn_heads(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))[None], k, include_self=False)
    return Graph(idx[0].numpy().astype(np.int32), dist[0].numpy())


def graph_file(atlas_path: Path, layer: int, head: int) -> Path:
    return Path(atlas_path) / "knn" / f"{head_name(layer, head)}.npz"


def head_graph(atlas_path: Path, layer: int, head: int, X: np.ndarray, k: int = K) -> Graph:
    """The Graph of (layer, head)'s joint cloud X (points, features), k neighbours: read from
    the atlas when an earlier layout kept one that fits (same points, at least k neighbours),
    else computed and kept there (atomically) for the next layout."""
    path = graph_file(atlas_path, layer, head)
    k = min(k, len(X) - 1)
    kept = _read(path)
    if kept is not None and len(kept.indices) == len(X) and kept.k >= k:
        return kept.first(k)
    graph = exact_graph(X, max(k, K))
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, indices=graph.indices, distances=graph.distances)
    return graph.first(k)


def _read(path: Path) -> Graph | None:
    """A kept graph, or None where there is none or it cannot be read (it is then recomputed)."""
    try:
        with np.load(path) as f:
            return Graph(f["indices"], f["distances"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def drop_graphs(atlas_path: Path) -> None:
    """Remove the kept graphs: once every layout is written nothing reads them."""
    shutil.rmtree(Path(atlas_path) / "knn", ignore_errors=True)
