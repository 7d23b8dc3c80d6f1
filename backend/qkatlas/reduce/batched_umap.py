"""UMAP of many heads at once in torch: one kNN search, one edge list and one SGD per batch.

umap-learn fits one head per call, and a single 20k-point head is too small to pay off on a
GPU; the win comes from optimising every head of a layer (or several layers) together. The
algorithm is umap-learn's (exact kNN, fuzzy simplicial set, PCA init, SGD with negative
sampling, clipped gradients, linearly decaying learning rate) with two deliberate changes:
an epoch's updates are computed from the positions at its start and applied together, and
negative samples come from a stateless hash of (seed, epoch, edge), so a head's graph,
initial layout and random draws do not depend on which heads share its batch.

Layouts are reproducible for a seed on a given device and thread count (updates are summed in
fixed point, so CUDA's atomic adds give the same sum in any order). Across batch compositions
they agree in quality, not bit for bit on CPU: the vectorised and scalar paths of pow differ
in the last bit and SGD amplifies that.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .batched_pca import pca_heads
from .knn import knn_heads

IMPLEMENTATION = "qkatlas batched torch"
N_NEIGHBORS = 15  # umap-learn's defaults
MIN_DIST = 0.1
_MASK32 = 0xFFFFFFFF
# Updates are summed as integers in units of 2**-32: integer addition is associative, so
# CUDA's atomic index_add_ gives the same sum in any order.
_FIXED = 2.0 ** 32


def default_epochs(points: int) -> int:
    """umap-learn's default: more epochs for small data sets."""
    return 500 if points <= 10000 else 200


@lru_cache(maxsize=None)
def curve_params(min_dist: float, spread: float = 1.0) -> tuple[float, float]:
    """(a, b) of the low-dimensional similarity 1 / (1 + a d^2b), as umap-learn fits them."""
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(spread, min_dist)
    return float(a), float(b)


def smooth_knn_dist(dist: torch.Tensor, k: int, n_iter: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """umap-learn's per-point (sigma, rho), vectorised: rho is the distance to the nearest
    other point, sigma solves sum_j exp(-(d_j - rho) / sigma) = log2(k) by bisection.

    dist: (heads, points, k) with the point itself in column 0 -> sigma, rho (heads, points) float64.
    """
    dist = dist.double()
    nonzero = dist > 0
    first = nonzero.int().argmax(dim=-1, keepdim=True)
    rho = torch.where(nonzero.any(-1), dist.gather(-1, first).squeeze(-1), torch.zeros_like(dist[..., 0]))
    excess = (dist[..., 1:] - rho[..., None]).clamp_min(0)
    target = float(np.log2(k))
    lo = torch.zeros_like(rho)
    hi = torch.full_like(rho, float("inf"))
    mid = torch.ones_like(rho)
    active = torch.ones_like(rho, dtype=torch.bool)
    for _ in range(n_iter):
        psum = torch.exp(-excess / mid[..., None]).sum(-1)
        active &= (psum - target).abs() >= 1e-5
        if not bool(active.any()):
            break
        above = psum > target
        hi = torch.where(active & above, mid, hi)
        lo = torch.where(active & ~above, mid, lo)
        mid = torch.where(active, torch.where(torch.isinf(hi), mid * 2, (lo + hi) / 2), mid)
    # A floor keeps sigma from collapsing where the neighbours are (nearly) equidistant.
    floor = 1e-3 * torch.where(rho > 0, dist.mean(-1), dist.mean(dim=(1, 2))[:, None])
    return torch.maximum(mid, floor), rho


def fuzzy_graph(dist: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The symmetric fuzzy simplicial set of every head as one edge list over global node ids
    (head * points + point): (rows (E,), cols (E,), weights (E,) float32), sorted by (row, col).

    Membership w_ij = exp(-(d_ij - rho_i) / sigma_i), combined as w + w^T - w * w^T.
    """
    H, P, _ = dist.shape
    sigma, rho = smooth_knn_dist(dist, k)
    excess = dist.double() - rho[..., None]
    w = torch.where(excess <= 0, 1.0, torch.exp(-excess / sigma[..., None]))
    local = torch.arange(P, device=dist.device)
    w = torch.where(idx == local[None, :, None], 0.0, w).float()
    offset = (torch.arange(H, device=dist.device) * P)[:, None, None]
    rows = (offset + local[None, :, None]).expand_as(idx).reshape(-1)
    cols = (offset + idx).reshape(-1)
    w = w.reshape(-1)
    keep = w > 0
    return _symmetrise(rows[keep], cols[keep], w[keep], H * P)


def _symmetrise(rows: torch.Tensor, cols: torch.Tensor, w: torch.Tensor, n: int):
    """Union w + w^T - w * w^T of a directed graph whose (row, col) pairs are distinct."""
    keys = torch.cat([rows * n + cols, cols * n + rows])
    vals = torch.cat([w, w])
    keys, order = keys.sort(stable=True)
    vals = vals[order]
    first = torch.ones_like(keys, dtype=torch.bool)
    first[1:] = keys[1:] != keys[:-1]
    # Each key occurs at most twice: once as i->j, once as the transpose of j->i.
    second = (~first).nonzero().squeeze(1)
    a, b = vals[second - 1], vals[second]
    vals[second - 1] = a + b - a * b
    keys, vals = keys[first], vals[first]
    return keys // n, keys % n, vals


def pca_init(X: torch.Tensor, dim: int) -> torch.Tensor:
    """umap-learn's init="pca", without its 1e-4 noise: each head's PCA rescaled so every
    axis spans [0, 10]. X: (heads, points, features) -> (heads, points, dim) float32."""
    Y = pca_heads(X, dim)[0]
    lo, hi = Y.amin(dim=1, keepdim=True), Y.amax(dim=1, keepdim=True)
    return 10.0 * (Y - lo) / (hi - lo).clamp_min(1e-12)


def _mix32(x):
    """A 32-bit integer hash (T. Mueller's) of a Python int, or in place of an int64 tensor;
    products stay below 2**59, so int64 never overflows."""
    for _ in range(2):
        x ^= x >> 16
        x *= 0x45D9F3B
        x &= _MASK32
    x ^= x >> 16
    return x


def _head_max(w: torch.Tensor, head_of_edge: torch.Tensor, heads: int) -> torch.Tensor:
    return torch.zeros(heads, dtype=w.dtype, device=w.device).scatter_reduce(0, head_of_edge, w, "amax",
                                                                             include_self=False)


def _clipped_gradient(diff: torch.Tensor, a: float, b: float, attract: bool) -> torch.Tensor:
    """umap-learn's gradient on an edge's head end, clipped to [-4, 4] per coordinate.
    diff: (..., dim) head minus tail."""
    # Summed coordinate by coordinate: .sum(-1) over a 2-wide axis is several times slower on CPU.
    d2 = sum(diff[..., c] * diff[..., c] for c in range(diff.shape[-1]))[..., None]
    pos = d2.clamp_min(1e-30)
    pb = pos ** b
    if attract:
        coeff = -2.0 * a * b * pb / (pos * (a * pb + 1.0))
    else:
        coeff = 2.0 * b / ((0.001 + pos) * (a * pb + 1.0))
    # No force between coincident points, as in umap-learn (this covers drawing the point itself).
    return (torch.where(d2 > 0, coeff, 0.0) * diff).clamp_(-4.0, 4.0)


def _fixed(t: torch.Tensor) -> torch.Tensor:
    return torch.round(t * _FIXED).long()


def optimize_layout(Y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, w: torch.Tensor, points: int,
                    a: float, b: float, n_epochs: int, seed: int = 0, negative_sample_rate: int = 5) -> torch.Tensor:
    """UMAP's SGD on every head at once. Y: (nodes, dim) with node = head * points + point;
    rows/cols/w: the edge list from `fuzzy_graph`. Edges are sampled in proportion to their
    weight; each sampled edge pulls its ends together and pushes its head end away from
    `negative_sample_rate` random points of the same head. Returns the new (nodes, dim)."""
    Y = Y.float().clone()
    device, heads = Y.device, len(Y) // points
    head_of_edge = rows // points
    w_max = _head_max(w, head_of_edge, heads)
    # As umap-learn: edges too weak to be sampled once in n_epochs are dropped.
    keep = w >= w_max[head_of_edge] / (n_epochs if n_epochs > 10 else default_epochs(points))
    rows, cols, w, head_of_edge = rows[keep], cols[keep], w[keep], head_of_edge[keep]
    epochs_per_sample = (w_max[head_of_edge] / w).double()
    next_sample = epochs_per_sample.clone()
    # A negative sample is named by (seed, epoch, edge's rank within its head, draw), so a
    # head's draws do not depend on which heads share its batch.
    counts = torch.bincount(head_of_edge, minlength=heads)
    rank = torch.arange(len(w), device=device) - (torch.cumsum(counts, 0) - counts)[head_of_edge]
    draw = rank[:, None] * negative_sample_rate + torch.arange(negative_sample_rate, device=device)
    first_node = (head_of_edge * points)[:, None]
    seed_key = _mix32(seed & _MASK32)
    acc = torch.zeros(Y.shape, dtype=torch.int64, device=device)
    for epoch in range(n_epochs):
        alpha = 1.0 - epoch / n_epochs
        e = (next_sample <= epoch).nonzero().squeeze(1)
        next_sample[e] += epochs_per_sample[e]
        j, k = rows[e], cols[e]
        yj = Y.index_select(0, j)
        pull = _clipped_gradient(yj - Y.index_select(0, k), a, b, attract=True)
        negative = first_node[e] + _mix32(draw[e] ^ _mix32((seed_key + epoch) & _MASK32)) % points
        y_neg = Y.index_select(0, negative.reshape(-1)).view(len(e), negative_sample_rate, Y.shape[1])
        push = _clipped_gradient(yj[:, None, :] - y_neg, a, b, attract=False).sum(1)
        acc.index_add_(0, j, _fixed((pull + push) * alpha))
        acc.index_add_(0, k, _fixed(pull * -alpha))
        Y += acc.double().div_(_FIXED).float()
        acc.zero_()
    return Y


def umap_heads(X: torch.Tensor, dim: int, n_neighbors: int = N_NEIGHBORS, min_dist: float = MIN_DIST, seed: int = 0,
               n_epochs: int | None = None, negative_sample_rate: int = 5) -> torch.Tensor:
    """UMAP of every head in one go, on X's device.

    X: (heads, points, features) -> (heads, points, dim) float32.
    """
    H, P, _ = X.shape
    k = min(n_neighbors, P)
    n_epochs = default_epochs(P) if n_epochs is None else n_epochs
    a, b = curve_params(min_dist)
    dist, idx = knn_heads(X, k)
    rows, cols, w = fuzzy_graph(dist, idx, k)
    del dist, idx
    Y0 = pca_init(X, dim).reshape(H * P, dim)
    Y = optimize_layout(Y0, rows, cols, w, P, a, b, n_epochs, seed, negative_sample_rate)
    return Y.reshape(H, P, dim)


def umap_params(seed: int, n_epochs: int | None, n_neighbors: int = N_NEIGHBORS, min_dist: float = MIN_DIST) -> dict:
    return {"implementation": IMPLEMENTATION, "n_neighbors": n_neighbors, "min_dist": min_dist,
            "metric": "euclidean", "init": "pca", "seed": seed, "n_epochs": n_epochs}

