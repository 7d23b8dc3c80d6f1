"""How distance agrees with attention (agreement.py) and the joint transform chosen for it (faithful.py)."""

import numpy as np
import pytest

from qkatlas.agreement import (agreement, contexts, layout_agreement, masked_ranks, pooled_pearson, rank_agreement,
                               scores)
from qkatlas.faithful import faithful_transform, sphere_translation
from qkatlas.joint import attention, joint_transforms, to_joint


def test_contexts_pair_each_query_with_the_keys_of_its_own_item():
    # items of 3, 2 and 4 tokens; the 2-token item has no query with 3 keys
    ctx = contexts([0, 3, 5, 9], causal=False)
    assert ctx.query.tolist() == [0, 1, 2, 5, 6, 7, 8]
    assert [ctx.keys[r][ctx.mask[r]].tolist() for r in (0, 2, 3)] == [[0, 1, 2], [0, 1, 2], [5, 6, 7, 8]]
    assert ctx.pairs == 3 * 3 + 4 * 4


def test_causal_contexts_stop_at_the_query_and_need_three_keys():
    ctx = contexts([0, 3, 5, 9], causal=True)
    assert ctx.query.tolist() == [2, 7, 8]
    assert [ctx.keys[r][ctx.mask[r]].tolist() for r in range(3)] == [[0, 1, 2], [5, 6, 7], [5, 6, 7, 8]]


def test_contexts_are_sampled_within_the_cell_budget_the_same_way_each_time():
    offsets = np.arange(0, 1001, 10)  # 100 items of 10 tokens: 1000 queries x 10 keys
    a, b = contexts(offsets, causal=False, max_cells=2000, seed=3), contexts(offsets, causal=False, max_cells=2000, seed=3)
    assert len(a.query) == 200 and np.array_equal(a.query, b.query)
    assert np.all(np.diff(a.query) > 0)
    assert len(contexts(offsets, causal=False, max_cells=2000, seed=4).query) == 200


def test_ranks_average_ties_and_ignore_masked_entries():
    x = np.array([[3.0, 1.0, 2.0, 2.0], [5.0, 4.0, 0.0, 9.0]])
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    r = masked_ranks(x, mask)
    np.testing.assert_array_equal(r[0], [4.0, 1.0, 2.5, 2.5])
    np.testing.assert_array_equal(r[1, :2], [2.0, 1.0])
    assert np.isnan(r[1, 2:]).all()


def test_rank_agreement_is_one_when_the_nearest_keys_score_highest_and_minus_one_reversed():
    mask = np.ones((2, 4), dtype=bool)
    dist = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.1, 0.9, 0.2]])
    score = np.array([[9.0, 5.0, 2.0, -1.0], [1.0, 4.0, -3.0, 2.0]])  # each row: nearer means higher
    assert rank_agreement(dist, score, mask) == pytest.approx(1.0)
    assert rank_agreement(dist, -score, mask) == pytest.approx(-1.0)
    # only the order counts: any increasing function of the scores gives the same answer
    assert rank_agreement(dist, np.exp(score), mask) == pytest.approx(1.0)


def test_a_query_whose_keys_are_all_equally_far_is_left_out():
    mask = np.ones((2, 3), dtype=bool)
    dist = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    score = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert rank_agreement(dist, score, mask) == pytest.approx(-1.0)  # the second query alone


def test_pooled_pearson_by_hand():
    mask = np.array([[True, True, False], [True, False, False]])
    dist = np.array([[1.0, 2.0, 7.0], [3.0, 8.0, 8.0]])
    score = np.array([[3.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    # pairs (1, 3), (2, 1), (3, 2): Pearson = -0.5
    assert pooled_pearson(dist, score, mask) == pytest.approx(-0.5)


def test_agreement_of_points_where_distance_orders_keys_as_attention_does():
    # keys on the unit circle, queries inside it: |q - k|² = |q|² + 1 - 2 q·k falls as q·k rises
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    k = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    q = 0.5 * np.stack([np.cos(angles + 0.3), np.sin(angles + 0.3)], axis=1)  # between keys: no ties
    ctx = contexts([0, 6], causal=False)
    got = agreement(q, k, scores(q, k, ctx), ctx)
    assert got["attention_agreement"] == pytest.approx(1.0)
    assert got["distance_dot_pearson"] < -0.9


def test_layout_agreement_reads_queries_first_then_keys():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    coords = np.concatenate([q, k])
    offsets = np.array([0, 4, 8])
    ctx = contexts(offsets, causal=True)
    assert layout_agreement(coords, q, k, offsets, causal=True) == agreement(q, k, scores(q, k, ctx), ctx)
    swapped = layout_agreement(np.concatenate([k, q]), q, k, offsets, causal=True)
    assert swapped != layout_agreement(coords, q, k, offsets, causal=True)


def _sphere_head(seed=0, tokens=240, dim=6, centre=4.0, radius=2.0):
    """Keys on a sphere whose centre lies off the origin, along a direction the queries have no part in:
    raw distance then mixes |k|², which varies with the key, into the order of a query's keys."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(tokens, dim))
    k = radius * u / np.linalg.norm(u, axis=1, keepdims=True)
    k[:, 0] += centre
    q = rng.normal(size=(tokens, dim))
    q[:, 0] = 0.0
    return q.astype(np.float32), k.astype(np.float32), np.arange(0, tokens + 1, 12)


def test_sphere_translation_finds_the_centre_of_the_keys():
    q, k, offsets = _sphere_head()
    t = sphere_translation(k, contexts(offsets, causal=False))
    np.testing.assert_allclose(t, [-4.0, 0, 0, 0, 0, 0], atol=0.02)


def test_faithful_transform_makes_distance_agree_with_attention_where_raw_does_not():
    q, k, offsets = _sphere_head()
    ctx = contexts(offsets, causal=False)
    choice = faithful_transform(q, k, ctx)
    X = to_joint(q, k, choice.translation, choice.scale)
    score = scores(q, k, ctx)
    raw = agreement(q, k, score, ctx)
    joint = agreement(X[:len(q)], X[len(q):], score, ctx)
    assert raw["attention_agreement"] < 0.5
    assert joint["attention_agreement"] > 0.99
    assert joint["distance_dot_pearson"] < raw["distance_dot_pearson"]
    assert choice.scores.rank == pytest.approx(joint["attention_agreement"], abs=1e-3)


@pytest.mark.parametrize("causal", [False, True])
def test_faithful_transform_leaves_every_items_attention_unchanged(causal):
    q, k, offsets = _sphere_head(seed=1)
    choice = faithful_transform(q, k, contexts(offsets, causal=causal))
    assert np.linalg.norm(choice.translation) > 1  # a real change of the joint space, not raw q/k
    X = to_joint(q, k, choice.translation, choice.scale)
    n = len(q)
    for a, b in zip(offsets[:-1], offsets[1:]):
        np.testing.assert_allclose(attention(X[a:b], X[n + a:n + b], 0.4, causal),
                                   attention(q[a:b], k[a:b], 0.4, causal), atol=1e-5)


def test_raw_stays_where_raw_distance_already_orders_keys_as_attention_does():
    rng = np.random.default_rng(2)
    k = rng.normal(size=(120, 5))
    k /= np.linalg.norm(k, axis=1, keepdims=True)  # equal norms around the origin: nothing to fix
    q = rng.normal(size=(120, 5))
    choice = faithful_transform(q, k, contexts(np.arange(0, 121, 10), causal=False))
    assert choice.scale == 1.0 and not choice.translation.any()
    assert choice.scores == choice.raw and choice.raw.rank > 0.99


@pytest.mark.parametrize("seed", range(4))
def test_faithful_transform_is_never_worse_than_raw_on_any_measure(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(150, 8)) * rng.uniform(0.5, 3, size=8) + rng.normal(size=8)
    k = rng.normal(size=(150, 8)) * rng.uniform(0.5, 3, size=8) + 2 * rng.normal(size=8)
    offsets = np.arange(0, 151, 15)
    ctx = contexts(offsets, causal=bool(seed % 2))
    choice = faithful_transform(q, k, ctx)
    assert choice.scores.no_worse_than(choice.raw)
    X = to_joint(q, k, choice.translation, choice.scale)  # and measured afresh from the float32 joint cloud
    score = scores(q, k, ctx)
    got, raw = agreement(X[:150], X[150:], score, ctx), agreement(q, k, score, ctx)
    assert got["attention_agreement"] >= raw["attention_agreement"] - 1e-3
    assert got["distance_dot_pearson"] <= raw["distance_dot_pearson"] + 1e-3


def test_each_joint_method_reports_its_agreement_beside_raw():
    q, k, offsets = _sphere_head(seed=3)
    ctx = contexts(offsets, causal=False)
    layer = {m: joint_transforms(q[:, None], k[:, None], ctx, m) for m in ("qkatlas", "attentionviz", "raw")}
    for got in layer.values():
        np.testing.assert_allclose(got.raw_agreement, layer["raw"].agreement)
    assert layer["qkatlas"].agreement[0, 0] > layer["raw"].agreement[0, 0] + 0.4
