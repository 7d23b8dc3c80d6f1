import numpy as np

from qkatlas.neighbours import by_attention, nearest, top_k


def test_top_k_is_best_first_with_ties_in_row_order():
    scores = np.array([1.0, 5.0, 3.0, 5.0, 3.0, 0.0])
    np.testing.assert_array_equal(top_k(scores, 3), [1, 3, 2])
    np.testing.assert_array_equal(top_k(scores, 4), [1, 3, 2, 4])
    np.testing.assert_array_equal(top_k(scores, 2, largest=False), [5, 0])
    np.testing.assert_array_equal(top_k(scores, 99), [1, 3, 2, 4, 0, 5])
    assert len(top_k(scores, 0)) == 0


def test_top_k_equals_a_full_stable_sort_on_random_scores_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, size=500).astype(np.float32)
    for k in (1, 7, 50, 499, 500):
        np.testing.assert_array_equal(top_k(scores, k), np.argsort(-scores, kind="stable")[:k])


def test_attention_neighbours_are_the_highest_scaled_dot_products():
    q = np.array([1.0, 0.0], dtype=np.float32)
    keys = np.array([[0.0, 1.0], [2.0, 0.0], [-1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    rows, scores = by_attention(q, keys, scaling=0.5, k=2)
    np.testing.assert_array_equal(rows, [1, 3])
    np.testing.assert_allclose(scores, [1.0, 0.5])


def test_nearest_excludes_the_point_itself():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    rows, dist = nearest(X, 0, 3)
    np.testing.assert_array_equal(rows, [3, 2, 1])
    np.testing.assert_allclose(dist, [0.0, 1.0, 5.0])
    assert len(nearest(X, 0, 10)[0]) == 3
