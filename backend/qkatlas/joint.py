"""The joint query/key space of a head, and attention rebuilt from stored vectors.

Pure functions on numpy arrays. A head's joint space holds its queries and keys together:
Q = s·q and K = (k + t)/s, both free, since q·(k + t) adds the same q·t to every key of a query
(softmax-invariant) and the scale cancels in q·k. Three ways to choose (t, s) per head
(`JOINT_METHODS`, the build's --joint):

  qkatlas       the default: the (t, s) that make distance agree with attention, or raw q/k where
                nothing does better (faithful.py; agreement.py measures it)
  attentionviz  AttentionViz's (Yeh et al. 2023): t = mean(q) - mean(k) puts the means together,
                s = sqrt(mean|k + t| / mean|q|) makes the mean norms equal
  raw           t = 0, s = 1: the vectors as the attention used them
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .agreement import Contexts
from .errors import InvalidInput
from .faithful import Choice, faithful_transform, scored_choice

JOINT_METHODS = ("qkatlas", "attentionviz", "raw")
DEFAULT_JOINT = "qkatlas"


@dataclass(frozen=True)
class JointLayer:
    """One layer's joint transforms and how each head's joint space agrees with attention.

    translation: (heads, head_dim) float32; scale: (heads,) float32;
    agreement, raw_agreement: (heads, 2) float32, [attention_agreement, distance_dot_pearson]
    (agreement.py) of the joint space and of raw q/k on the same sample; NaN where not measurable.
    """

    translation: np.ndarray
    scale: np.ndarray
    agreement: np.ndarray
    raw_agreement: np.ndarray


def attentionviz_transform(q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, float]:
    """q, k: (tokens, head_dim) -> (translation: (head_dim,), scale s), AttentionViz's rule."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    translation = q.mean(axis=0) - k.mean(axis=0)
    q_norm = np.linalg.norm(q, axis=1).mean()
    k_norm = np.linalg.norm(k + translation, axis=1).mean()
    scale = float(np.sqrt(k_norm / q_norm)) if q_norm > 0 and k_norm > 0 else 1.0
    return translation.astype(np.float32), scale


def to_joint(q: np.ndarray, k: np.ndarray, translation: np.ndarray, scale: float) -> np.ndarray:
    """(2 * tokens, head_dim) float32: scaled queries first, then translated and scaled keys."""
    q = np.asarray(q, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    return np.concatenate([q * scale, (k + translation) / scale], axis=0)


def head_transform(q: np.ndarray, k: np.ndarray, ctx: Contexts, method: str = DEFAULT_JOINT) -> Choice:
    """One head's (t, s) by `method`, scored against raw q/k on the sample `ctx`.
    q, k: (tokens, head_dim)."""
    if method == "qkatlas":
        return faithful_transform(q, k, ctx)
    if method == "attentionviz":
        return scored_choice(q, k, ctx, *attentionviz_transform(q, k))
    if method == "raw":
        return scored_choice(q, k, ctx, np.zeros(q.shape[1], dtype=np.float32), 1.0)
    raise InvalidInput(f"joint must be one of {', '.join(JOINT_METHODS)}, got {method!r}")


def joint_transforms(q: np.ndarray, k: np.ndarray, ctx: Contexts, method: str = DEFAULT_JOINT) -> JointLayer:
    """q, k: (tokens, heads, head_dim) of one layer -> every head's transform and agreement."""
    from threadpoolctl import threadpool_limits

    # Many tiny (head_dim x head_dim) solves: BLAS threads only contend for them.
    with threadpool_limits(1, user_api="blas"):
        choices = [head_transform(q[:, h], k[:, h], ctx, method) for h in range(q.shape[1])]
    return JointLayer(translation=np.stack([c.translation for c in choices]).astype(np.float32),
                      scale=np.array([c.scale for c in choices], dtype=np.float32),
                      agreement=np.array([_pair(c.scores) for c in choices], dtype=np.float32),
                      raw_agreement=np.array([_pair(c.raw) for c in choices], dtype=np.float32))


def _pair(scores) -> tuple[float, float]:
    return (np.nan, np.nan) if scores is None else (scores.rank, scores.pearson)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, scaling: float, causal: bool) -> np.ndarray:
    """Attention of one item, rebuilt: q, k (n, head_dim) -> probabilities (n, n), rows sum to 1."""
    scores = (np.asarray(q, dtype=np.float64) @ np.asarray(k, dtype=np.float64).T) * scaling
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape, dtype=bool)), scores, -np.inf)
    return softmax(scores, axis=-1)


def attention_heads(q: np.ndarray, k: np.ndarray, scaling: float, causal: bool) -> np.ndarray:
    """All heads of one item: q, k (n, heads, head_dim) -> (heads, n, n)."""
    return np.stack([attention(q[:, h], k[:, h], scaling, causal) for h in range(q.shape[1])])
