"""t-SNE of many heads at once in torch: one affinity pass and one gradient descent per batch.

openTSNE fits one head per call on the CPU; on a GPU the win comes from optimising a layer's
heads together, as batched_umap.py does for UMAP. The algorithm is openTSNE's defaults:
affinities from the 3 x perplexity nearest neighbours (exact, reduce/knn.py), a Gaussian per
point calibrated by bisection to the perplexity, symmetrised; PCA start rescaled to standard
deviation 1e-4 plus 1e-6 jitter; 250 iterations of early exaggeration 12, then 500 without;
learning rate N / exaggeration, momentum 0.8, gains, steps clipped to norm 5, re-centred
every iteration. The gradient is exact, not approximated: the repulsion sums over every pair
of points of a head, in blocks of rows so memory stays bounded.

Cost of the exact repulsion (estimates: no GPU has measured it): heads x points^2 pairs per
iteration, ~18 float32 instructions each in 2-D. A layer of GPT-2 small at 20k points per head
is 4.8e9 pairs: as one fused kernel (torch.compile, used on CUDA) that is compute-bound, ~4 ms
per iteration on an H100-class GPU, so ~4 ms x 750 iterations x 12 layers ~ 40 s per layout.
Eager torch writes each intermediate to memory, ~75 bytes per pair, ~90 ms per iteration at
4 TB/s, ~25x slower; it is the fallback when compiling fails, and what the CPU runs (t-SNE is
batched only on CUDA).

Reproducible for a seed on a given device: the seed draws the start's jitter; per-point sums
are row reductions, and the one scatter (the transpose half of the attraction) adds in fixed
point, so CUDA's atomic adds give the same sum in any order. Compiled kernels keep their
reduction order within a process; a first compile may tune to another one.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch

from .batched_pca import pca_heads
from .knn import knn_heads

IMPLEMENTATION = "qkatlas batched torch t-SNE"
PERPLEXITY = 30.0
EARLY_EXAGGERATION = 12.0  # openTSNE's defaults, from here down
EARLY_EXAGGERATION_ITER = 250
N_ITER = 500
MOMENTUM = 0.8
MIN_GAIN = 0.01
MAX_STEP_NORM = 5.0
INIT_STD = 1e-4
JITTER = 0.01  # of INIT_STD
# The transpose half of the attraction is summed as integers in units of 2**-50: each edge's
# force is at most exaggeration x its affinity / 2 and a head's affinities sum to 1, so sums stay
# below 2**13 for any exaggeration under ~16000, at a resolution far below float32's.
_FIXED = 2.0 ** 50
# Pairs per block of the repulsion: eager torch holds (dim + 4) float32 values per pair.
_BLOCK_PAIRS = {"cuda": 1 << 27, "cpu": 1 << 22}

PairSums = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def effective_perplexity(points: int, perplexity: float = PERPLEXITY) -> float:
    """The perplexity a head of `points` can have, as TSNEReducer uses it (3 x perplexity neighbours)."""
    return min(perplexity, max(2.0, (points - 1) / 3))


def conditional_p(dist: torch.Tensor, perplexity: float, tol: float = 1e-8, max_iter: int = 200) -> torch.Tensor:
    """openTSNE's p_{j|i} over each point's neighbours: exp(-beta_i d_ij^2), normalised per row,
    with beta_i bisected until the row's entropy is log(perplexity).

    dist: (heads, points, k) distances to the neighbours -> (heads, points, k) float64, rows sum to 1.
    """
    d2 = dist.double() ** 2
    target = math.log(perplexity)
    beta = torch.ones(d2.shape[:-1], dtype=torch.float64, device=d2.device)
    lo, hi = torch.full_like(beta, -math.inf), torch.full_like(beta, math.inf)
    active = torch.ones_like(beta, dtype=torch.bool)
    for _ in range(max_iter):
        p = torch.exp(-d2 * beta[..., None])
        total = p.sum(-1).clamp_min(torch.finfo(torch.float64).eps)
        entropy = total.log() + beta * (d2 * p).sum(-1) / total
        excess = entropy - target
        active &= excess.abs() > tol
        if not bool(active.any()):
            break
        up = excess > 0  # too flat: narrow the Gaussian
        lo = torch.where(active & up, beta, lo)
        hi = torch.where(active & ~up, beta, hi)
        raised = torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2)
        lowered = torch.where(torch.isinf(lo), beta / 2, (beta + lo) / 2)
        beta = torch.where(active, torch.where(up, raised, lowered), beta)
    p = torch.exp(-d2 * beta[..., None])
    return p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).eps)


def affinities(X: torch.Tensor, perplexity: float = PERPLEXITY) -> tuple[torch.Tensor, torch.Tensor]:
    """Each head's symmetric affinities P = (P_cond + P_cond^T) / sum, kept as half-edges.

    X: (heads, points, features) -> (idx (heads, points, k) int64, the k nearest other points;
    p (heads, points, k) float32, p_{j|i} / (2 sum)). P_ij is p[i, j] + p[j, i] over whichever of
    the two half-edges exist; a head's half-edges sum to 1/2.
    """
    k = min(X.shape[1] - 1, int(3 * perplexity))
    dist, idx = knn_heads(X, k, include_self=False)
    p = conditional_p(dist, perplexity)
    return idx, (p / (2 * p.sum(dim=(1, 2), keepdim=True))).float()


def initial_layout(X: torch.Tensor, dim: int, seed: int = 0, init: torch.Tensor | None = None) -> torch.Tensor:
    """openTSNE's start: `init` (heads, points, dim) or each head's PCA, rescaled so its first
    axis has standard deviation 1e-4; PCA gets jitter of 1% of that, the same draws for every
    head (so a head's start does not depend on its batch). -> (heads, points, dim) float64."""
    Y = (pca_heads(X, dim)[0] if init is None else init.to(X.device)).double()
    Y = Y * (INIT_STD / Y[..., 0].std(dim=1, unbiased=False).clamp_min(1e-30))[:, None, None]
    if init is None:
        noise = torch.randn(Y.shape[1:], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        Y = Y + (INIT_STD * JITTER) * noise.to(Y.device)
    return Y


def attraction(Y: torch.Tensor, nodes: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """sum_j P_ij w_ij (y_i - y_j) for every point, w_ij = 1 / (1 + |y_i - y_j|^2).

    Y: (heads, points, dim); nodes: (heads, points, k) each half-edge's far end as a row of
    Y.reshape(-1, dim); p: (heads, points, k) its weight -> (heads, points, dim) float64.
    A half-edge i -> j pulls on both ends: its own row sums the pull on i, and the pull on j goes
    back by a fixed-point scatter.
    """
    H, P, D = Y.shape
    Y = Y.float()
    diff = Y[:, :, None, :] - Y.reshape(H * P, D)[nodes]  # (heads, points, k, dim)
    f = (p / (1.0 + (diff * diff).sum(-1)))[..., None] * diff
    back = torch.zeros((H * P, D), dtype=torch.int64, device=Y.device)
    back.index_add_(0, nodes.reshape(-1), torch.round(f.reshape(-1, D).double() * _FIXED).long())
    return f.sum(2).double() - back.view(H, P, D).double() / _FIXED


def pair_sums(rows: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """rows: (heads, R, dim), Y: (heads, points, dim) -> (heads, R, dim + 1): for each row point
    i, sum_j w_ij^2 (y_i - y_j) per coordinate, then sum_j w_ij, over every j (i itself adds
    w_ii = 1 and no force). From differences, coordinate by coordinate: torch.compile fuses it
    into one pass that never stores a (heads, R, points) tensor."""
    diffs = [rows[..., c, None] - Y[:, None, :, c] for c in range(Y.shape[-1])]
    # In place and vecdot: eager torch then makes one temporary per step instead of two (5x faster on CPU).
    w = diffs[0] * diffs[0]
    for d in diffs[1:]:
        w.addcmul_(d, d)
    w = w.add_(1.0).reciprocal_()
    total = w.sum(-1)
    w2 = w.square_()
    return torch.stack([torch.linalg.vecdot(w2, d) for d in diffs] + [total], dim=-1)


def repulsion(Y: torch.Tensor, sums: PairSums = pair_sums, block_pairs: int | None = None):
    """The exact repulsion sum_j w_ij^2 (y_i - y_j) and each head's normaliser Z = sum_{i != j} w_ij.

    Y: (heads, points, dim) -> ((heads, points, dim) float64, Z (heads,) float64). Rows go in
    blocks of one size (the last padded with repeats) so a compiled `sums` compiles once.
    """
    H, P, D = Y.shape
    Y = Y.float()
    budget = block_pairs or _BLOCK_PAIRS.get(Y.device.type, _BLOCK_PAIRS["cuda"])
    R = max(1, min(P, budget // (H * P)))
    out = torch.empty((H, P, D + 1), dtype=torch.float64, device=Y.device)
    for r0 in range(0, P, R):
        rows = torch.arange(r0, r0 + R, device=Y.device).clamp_max(P - 1)
        n = min(R, P - r0)
        out[:, r0:r0 + n] = sums(Y[:, rows], Y)[:, :n].double()
    return out[..., :D], out[..., D].sum(1) - P


def gradient(Y: torch.Tensor, nodes: torch.Tensor, p: torch.Tensor, exaggeration: float = 1.0,
             sums: PairSums = pair_sums) -> torch.Tensor:
    """openTSNE's gradient of KL(P || Q) (without its constant factor 4): exaggeration x the
    attraction minus the repulsion over Z. Shapes as `attraction`; -> (heads, points, dim) float64."""
    rep, Z = repulsion(Y, sums)
    return exaggeration * attraction(Y, nodes, p) - rep / Z[:, None, None]


def _descend(Y: torch.Tensor, nodes: torch.Tensor, p: torch.Tensor, n_iter: int, exaggeration: float,
             state: dict, sums: PairSums) -> torch.Tensor:
    """openTSNE's gradient descent: momentum, gains (+0.2 where the direction flipped, x0.8 +
    0.01 where it did not), learning rate N / exaggeration, steps clipped to norm 5, re-centred.
    `state` carries the update and gains from one phase to the next, as openTSNE's optimizer does."""
    rate = Y.shape[1] / exaggeration
    update = state.setdefault("update", torch.zeros_like(Y))
    gains = state.setdefault("gains", torch.ones_like(Y))
    for _ in range(n_iter):
        grad = gradient(Y, nodes, p, exaggeration, sums)
        gains = torch.where(torch.sign(update) != torch.sign(grad), gains + 0.2, gains * 0.8 + MIN_GAIN)
        update = MOMENTUM * update - rate * gains * grad
        norm = update.norm(dim=-1, keepdim=True)
        update = torch.where(norm > MAX_STEP_NORM, update * (MAX_STEP_NORM / norm), update)
        Y = Y + update
        Y = Y - Y.mean(dim=1, keepdim=True)
    state["update"], state["gains"] = update, gains
    return Y


_COMPILED: dict[str, PairSums | bool] = {}


def compiled_pair_sums(rows: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """pair_sums compiled once per process (one kernel per block shape); where compiling fails,
    a warning says why and this process goes on with pair_sums itself, which computes the same."""
    if not _COMPILED.get("failed"):
        try:
            return _COMPILED.setdefault("fn", torch.compile(pair_sums, dynamic=False))(rows, Y)
        except Exception as e:  # any compiler or driver failure: eager torch computes the same sums
            warnings.warn(f"t-SNE repulsion runs uncompiled (slower): torch.compile failed: {e}", RuntimeWarning)
            _COMPILED["failed"] = True
    return pair_sums(rows, Y)


def uses_compiled(device: torch.device | str, compiled: bool | None = None) -> bool:
    """Whether the repulsion runs compiled: by default on CUDA, where it pays."""
    return torch.device(device).type == "cuda" if compiled is None else compiled


def tsne_heads(X: torch.Tensor, dim: int, perplexity: float = PERPLEXITY, seed: int = 0, n_iter: int = N_ITER,
               early_exaggeration_iter: int = EARLY_EXAGGERATION_ITER, init: torch.Tensor | None = None,
               compiled: bool | None = None) -> torch.Tensor:
    """t-SNE of every head in one go, on X's device.

    X: (heads, points, features) -> (heads, points, dim) float32. `init`: a start (heads,
    points, dim) instead of PCA; `compiled`: compile the repulsion (default: on CUDA).
    """
    perplexity = effective_perplexity(X.shape[1], perplexity)
    idx, p = affinities(X, perplexity)
    H, P, _ = idx.shape
    nodes = idx + (torch.arange(H, device=idx.device) * P)[:, None, None]
    del idx
    Y = initial_layout(X, dim, seed, init)
    sums = compiled_pair_sums if uses_compiled(X.device, compiled) else pair_sums
    state: dict = {}
    Y = _descend(Y, nodes, p, early_exaggeration_iter, EARLY_EXAGGERATION, state, sums)
    Y = _descend(Y, nodes, p, n_iter, 1.0, state, sums)
    return Y.float()


def tsne_params(points: int, seed: int, perplexity: float = PERPLEXITY, n_iter: int = N_ITER,
                early_exaggeration_iter: int = EARLY_EXAGGERATION_ITER) -> dict:
    """What a batched t-SNE layout records of its fit (no "gradient": that names openTSNE's
    approximations, which placement then picks for itself)."""
    return {"implementation": IMPLEMENTATION, "perplexity": effective_perplexity(points, perplexity), "seed": seed,
            "repulsion": "exact", "init": "pca", "early_exaggeration": EARLY_EXAGGERATION,
            "early_exaggeration_iter": early_exaggeration_iter, "n_iter": n_iter,
            "learning_rate": "points / exaggeration", "momentum": MOMENTUM}
