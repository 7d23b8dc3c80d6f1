"""The joint query/key space (AttentionViz) and attention rebuilt from stored vectors.

Pure functions on numpy arrays. Per head:
  translate keys by c = mean(q) - mean(k): softmax over keys is unchanged, since q·(k+c)
  adds the same q·c to every key of a query;
  scale queries by s and keys by 1/s with s = sqrt(mean|k| / mean|q|) (norms taken after the
  translation), so both have the same mean norm: q·k is unchanged.
"""

from __future__ import annotations

import numpy as np


def joint_transform(q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, float]:
    """q, k: (tokens, head_dim) -> (translation: (head_dim,), scale s)."""
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


def joint_transforms(q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q, k: (tokens, heads, head_dim) of one layer -> (translation (heads, head_dim), scale (heads,))."""
    heads = q.shape[1]
    out = [joint_transform(q[:, h], k[:, h]) for h in range(heads)]
    return np.stack([t for t, _ in out]), np.array([s for _, s in out], dtype=np.float32)


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
