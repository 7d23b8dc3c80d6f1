"""The map of heads: Hellinger distances between heads' attention, checked by hand, drawn in 2-D."""

import numpy as np
import pytest

from qkatlas.headmap import head_distances, head_map, map_rows, nearest, root_rows


def roots_of(*heads: np.ndarray) -> np.ndarray:
    """Each head's attention (rows, keys) -> (heads, rows * keys) square roots, as root_rows gives them."""
    return np.stack([np.sqrt(h).reshape(-1) for h in heads])


def test_identical_heads_are_at_distance_zero_and_disjoint_heads_at_one():
    self_head = np.eye(3)
    first = np.zeros((3, 3))
    first[:, 0] = 1.0
    d = head_distances(roots_of(self_head, self_head.copy(), np.roll(self_head, 1, axis=1)), rows=3)
    assert d[0, 1] == pytest.approx(0.0, abs=1e-7)
    assert d[0, 2] == pytest.approx(1.0)  # never the same key
    # self vs first-token: they agree on row 0 only, so 1 - 1/3 of the affinity is lost
    d = head_distances(roots_of(self_head, first), rows=3)
    assert d[0, 1] == pytest.approx(np.sqrt(1 - 1 / 3))


def test_hellinger_distance_of_two_rows_by_hand():
    p, q = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    assert head_distances(roots_of(p, q), rows=1)[0, 1] == pytest.approx(np.sqrt(1 - np.sqrt(0.5)), abs=1e-6)


def test_root_rows_leave_out_rows_that_see_one_key():
    att = np.stack([np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None]])
    assert root_rows(att, np.arange(3), causal=True).shape == (1, 2 * 3)
    assert root_rows(att, np.arange(3), causal=False).shape == (1, 3 * 3)


def test_map_rows_keep_every_row_within_the_budget_and_an_even_subset_beyond():
    lengths = np.array([10, 10, 257])
    assert {i: len(r) for i, r in map_rows(lengths, np.array([0, 1]), 1000).items()} == {0: 10, 1: 10}
    rows = map_rows(lengths, np.array([2]), 2570)[2]
    assert len(rows) == 10 and rows[0] == 0 and np.all(np.diff(rows) > 0)


def test_the_map_keeps_distances_of_points_that_lie_in_a_plane():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 2))
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    coords, fit = head_map(d, seed=0)
    drawn = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(drawn, d, atol=1e-3)
    assert fit["correlation"] > 0.999 and fit["stress"] < 0.01


def test_nearest_heads_leave_out_the_head_itself():
    d = np.array([[0.0, 0.3, 0.1], [0.3, 0.0, 0.2], [0.1, 0.2, 0.0]])
    assert nearest(d, 0, 2) == [(2, 0.1), (1, 0.3)]
