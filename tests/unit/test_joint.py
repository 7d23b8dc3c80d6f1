import numpy as np

import pytest

from qkatlas.agreement import contexts
from qkatlas.errors import InvalidInput
from qkatlas.joint import JOINT_METHODS, attention, attentionviz_transform, joint_transforms, softmax, to_joint
from qkatlas.settings import Settings


def _cloud(seed=0, n=40, d=8):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, d)) * 3 + 1.5
    k = rng.normal(size=(n, d)) * 0.5 - 2.0
    return q.astype(np.float32), k.astype(np.float32)


def test_softmax_of_known_values():
    p = softmax(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])


def test_attention_by_hand_with_causal_mask():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    k = np.array([[1.0, 0.0], [0.0, 2.0]])
    a = attention(q, k, scaling=1.0, causal=True)
    np.testing.assert_allclose(a[0], [1.0, 0.0])  # first query sees only the first key
    e = np.exp([0.0, 2.0])
    np.testing.assert_allclose(a[1], e / e.sum())


def test_attentionviz_transform_equalises_means_and_norms():
    q, k = _cloud()
    t, s = attentionviz_transform(q, k)
    X = to_joint(q, k, t, s)
    qj, kj = X[: len(q)], X[len(q):]
    np.testing.assert_allclose((k + t).mean(0), q.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(qj, axis=1).mean(), np.linalg.norm(kj, axis=1).mean(), rtol=1e-5)


def test_attentionviz_transform_preserves_softmax_within_each_item():
    q, k = _cloud(seed=1)
    t, s = attentionviz_transform(q, k)
    X = to_joint(q, k, t, s)
    qj, kj = X[: len(q)], X[len(q):]
    for a, b in ((0, 10), (10, 25), (25, 40)):  # three "sentences"
        before = attention(q[a:b], k[a:b], 0.35, causal=False)
        after = attention(qj[a:b], kj[a:b], 0.35, causal=False)
        np.testing.assert_allclose(after, before, atol=1e-5)
        np.testing.assert_allclose(attention(qj[a:b], kj[a:b], 0.35, True), attention(q[a:b], k[a:b], 0.35, True),
                                   atol=1e-5)


def test_joint_transforms_give_every_head_its_transform_and_agreement():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(30, 3, 4))
    k = rng.normal(size=(30, 3, 4))
    ctx = contexts([0, 10, 20, 30], causal=False)
    av = joint_transforms(q, k, ctx, "attentionviz")
    assert av.translation.shape == (3, 4) and av.scale.shape == (3,) and av.agreement.shape == (3, 2)
    t1, s1 = attentionviz_transform(q[:, 1], k[:, 1])
    np.testing.assert_allclose(av.translation[1], t1)
    assert av.scale[1] == np.float32(s1)
    raw = joint_transforms(q, k, ctx, "raw")
    assert np.all(raw.translation == 0) and np.all(raw.scale == 1)
    np.testing.assert_array_equal(raw.agreement, raw.raw_agreement)  # raw q/k scored as itself
    np.testing.assert_array_equal(av.raw_agreement, raw.raw_agreement)


def test_unknown_joint_method_is_refused_with_the_choices():
    q = np.ones((6, 1, 2))
    with pytest.raises(InvalidInput, match="qkatlas, attentionviz, raw"):
        joint_transforms(q, q, contexts([0, 6], causal=False), "umap")


def test_joint_setting_accepts_each_joint_method_and_refuses_others():
    for method in JOINT_METHODS:
        assert Settings(joint=method).joint == method
    with pytest.raises(InvalidInput, match="--joint / QKATLAS_JOINT"):
        Settings.from_env({"QKATLAS_JOINT": "tsne"})
    assert Settings().joint == "qkatlas"
