import numpy as np

from qkatlas.joint import attention, joint_transform, joint_transforms, softmax, to_joint


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


def test_joint_transform_equalises_means_and_norms():
    q, k = _cloud()
    t, s = joint_transform(q, k)
    X = to_joint(q, k, t, s)
    qj, kj = X[: len(q)], X[len(q):]
    np.testing.assert_allclose((k + t).mean(0), q.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(qj, axis=1).mean(), np.linalg.norm(kj, axis=1).mean(), rtol=1e-5)


def test_joint_transform_preserves_softmax_within_each_item():
    q, k = _cloud(seed=1)
    t, s = joint_transform(q, k)
    X = to_joint(q, k, t, s)
    qj, kj = X[: len(q)], X[len(q):]
    for a, b in ((0, 10), (10, 25), (25, 40)):  # three "sentences"
        before = attention(q[a:b], k[a:b], 0.35, causal=False)
        after = attention(qj[a:b], kj[a:b], 0.35, causal=False)
        np.testing.assert_allclose(after, before, atol=1e-5)
        np.testing.assert_allclose(attention(qj[a:b], kj[a:b], 0.35, True), attention(q[a:b], k[a:b], 0.35, True),
                                   atol=1e-5)


def test_joint_transforms_per_head_shapes():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(30, 3, 4))
    k = rng.normal(size=(30, 3, 4))
    t, s = joint_transforms(q, k)
    assert t.shape == (3, 4) and s.shape == (3,)
    t1, s1 = joint_transform(q[:, 1], k[:, 1])
    np.testing.assert_allclose(t[1], t1)
    assert s[1] == np.float32(s1)
