"""Per-head statistics on hand-constructed queries and keys whose answers are known."""

import numpy as np
import pytest

from qkatlas.item_attention import item_attention
from qkatlas.stats import (THRESHOLDS, Batch, GroupedVariance, Tokens, batch_attention, batch_scores, distance_terms,
                           entropy_terms, gather, induction_scores, item_batches, label, layer_statistics, sample_items)

SHARP = 60.0  # a score this far above the rest puts all but e^-60 of the attention on one key


def text_tokens(n: int, special=(), ids=None) -> Tokens:
    """One sentence's token table of n tokens (flags `special`, token ids `ids`, default 0..n-1)."""
    flags = np.zeros(n, dtype=bool)
    flags[list(special)] = True
    return Tokens(position=np.arange(n), special=flags, row=np.full(n, -1), col=np.full(n, -1),
                  token_id=np.arange(n) if ids is None else np.asarray(ids))


def joined(tables: list[Tokens]) -> Tokens:
    """The token tables of several items, one after the other."""
    return Tokens(*(np.concatenate([getattr(t, f) for t in tables]) for f in Tokens.__dataclass_fields__))


def one_head(q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, head_dim) -> (n, 1, head_dim): a layer with one head."""
    return q[:, None, :], k[:, None, :]


def stats_of(items_qk, tokens, causal=False, scaling=1.0, token_ids=None):
    """The statistics of a one-head layer made of the items (q, k), each (n, head_dim), with token tables `tokens`."""
    q = np.concatenate([one_head(a, b)[0] for a, b in items_qk])
    k = np.concatenate([one_head(a, b)[1] for a, b in items_qk])
    offsets = np.concatenate([[0], np.cumsum([len(a) for a, _ in items_qk])])
    out = layer_statistics(q, k, scaling, causal, offsets, joined(tokens), token_ids)
    return {name: float(v[0]) for name, v in out.items()}


def pointing(n: int, target) -> tuple[np.ndarray, np.ndarray]:
    """q, k (n, n): query i scores key target(i) at SHARP and every other key at 0 (keys are one-hot positions)."""
    q = np.zeros((n, n))
    for i in range(n):
        j = target(i)
        if 0 <= j < n:
            q[i, j] = SHARP
    return q, np.eye(n)


def test_pure_previous_token_head_scores_one_on_offset_minus_one():
    n = 8
    s = stats_of([pointing(n, lambda i: i - 1)] * 3, [text_tokens(n)] * 3)
    assert s["previous"] == pytest.approx(1.0, abs=1e-6)
    assert s["next"] < 0.05 and s["self"] < 0.05
    assert s["distance"] == pytest.approx((7 * 1 + 3.5) / 8, abs=1e-3)  # query 0 sees nothing sharp: uniform, mean 3.5
    assert label(s)[0] == "previous-token"
    assert label(s)[1] == "previous-token (offset \u22121: 1.00)"


def test_self_and_next_token_heads():
    n = 6
    assert stats_of([pointing(n, lambda i: i)], [text_tokens(n)])["self"] == pytest.approx(1.0, abs=1e-6)
    nxt = stats_of([pointing(n, lambda i: i + 1)], [text_tokens(n)])
    assert nxt["next"] == pytest.approx(1.0, abs=1e-6)
    assert label(nxt)[0] == "next-token"


def test_causal_model_has_no_next_token_score():
    n = 6
    s = stats_of([pointing(n, lambda i: i - 1)], [text_tokens(n)], causal=True)
    assert s["next"] != s["next"]  # NaN: a causal query cannot see the next token
    assert s["previous"] == pytest.approx(1.0, abs=1e-6)


def test_uniform_head_has_entropy_one_causal_or_not():
    n, d = 7, 4
    zeros = (np.zeros((n, d)), np.random.default_rng(0).normal(size=(n, d)))
    for causal in (False, True):
        s = stats_of([zeros], [text_tokens(n)], causal=causal)
        assert s["entropy"] == pytest.approx(1.0, abs=1e-12)
        assert label(s) == ("broad", "broad / uniform (entropy 1.00)")


def test_entropy_of_a_one_hot_row_is_zero_and_single_key_rows_are_left_out():
    att = np.zeros((1, 1, 3, 3))
    att[..., 0] = 1.0
    total, rows = entropy_terms(att, causal=True)
    assert rows == 2 and total[0] == pytest.approx(0.0)  # row 0 sees one key: left out
    att = np.full((1, 1, 2, 2), 0.5)
    assert entropy_terms(att, causal=False)[0][0] == pytest.approx(2.0)  # two rows of entropy log 2 / log 2


def test_mean_distance_of_uniform_attention_by_hand():
    n = 3
    s = stats_of([(np.zeros((n, 2)), np.ones((n, 2)))], [text_tokens(n)])
    # rows: (0+1+2)/3, (1+0+1)/3, (2+1+0)/3
    assert s["distance"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_image_distance_is_in_patches_and_leaves_out_the_cls_token():
    # CLS then a 2 x 2 grid; uniform attention over all five tokens
    batch = Batch(items=np.array([0]), position=np.arange(5), special=np.array([True, False, False, False, False]),
                  row=np.array([-1, 0, 0, 1, 1]), col=np.array([-1, 0, 1, 0, 1]), token_id=np.arange(5)[None])
    att = np.full((1, 1, 5, 5), 0.2)
    total, rows = distance_terms(att, batch)
    assert rows == 4
    assert total[0] / rows == pytest.approx((0 + 1 + 1 + np.sqrt(2)) / 4)


def test_first_token_sink_and_special_tokens():
    n = 6
    sink = stats_of([pointing(n, lambda i: 0)], [text_tokens(n)])
    assert sink["first"] == pytest.approx(1.0, abs=1e-6)
    assert label(sink) == ("sink", "attention sink (first token 1.00)")
    sep = stats_of([pointing(n, lambda i: n - 1)], [text_tokens(n, special=(0, n - 1))])
    assert sep["special"] == pytest.approx(1.0, abs=1e-6)
    assert sep["first"] < 0.05
    assert label(sep)[0] == "special"


def test_scores_set_by_positions_alone_are_all_positional():
    n, rng = 6, np.random.default_rng(1)
    q, k = rng.normal(size=(n, n)), np.eye(n)  # score(i, j) = q[i, j]: a function of the two positions
    tokens = [text_tokens(n, ids=rng.integers(0, 50, n)) for _ in range(5)]
    s = stats_of([(q, k)] * 5, tokens, token_ids=50)
    assert s["positional"] == pytest.approx(1.0)
    assert s["token"] < 0.2
    assert label(s)[0] == "positional"


def test_scores_set_by_key_tokens_alone_are_content_not_positional():
    rng = np.random.default_rng(2)
    vocab, n, d = 12, 10, 16
    table = rng.normal(size=(vocab, d))
    probe = rng.normal(size=d) * 0.3
    items, tokens = [], []
    for _ in range(60):
        ids = rng.integers(0, vocab, n)
        items.append((np.tile(probe, (n, 1)), table[ids]))  # score(i, j) = probe · table[id of key j]
        tokens.append(text_tokens(n, ids=ids))
    s = stats_of(items, tokens, token_ids=vocab)
    # Not 1: each query's scores are centred on the mean over its item's keys, which varies
    # from item to item; the key's token still explains most of what is left.
    assert s["token"] > 0.8
    assert s["positional"] < 0.05


def test_noise_explains_nothing_once_adjusted_for_the_number_of_groups():
    rng = np.random.default_rng(3)
    g = GroupedVariance(heads=1, groups=50)
    g.add(rng.normal(size=(1, 2000)), rng.integers(0, 50, 2000))
    assert g.share()[0] < 0.02


def test_grouped_variance_by_hand():
    g = GroupedVariance(heads=1, groups=2)
    g.add(np.array([[1.0, 1.0, 3.0, 3.0]]), np.array([0, 0, 1, 1]))
    assert g.share()[0] == pytest.approx(1.0)
    g = GroupedVariance(heads=1, groups=2)
    g.add(np.array([[1.0, 3.0, 1.0, 3.0]]), np.array([0, 0, 1, 1]))
    assert g.share()[0] == 0.0  # both groups have the same mean


def test_induction_score_reads_the_stripe_after_the_earlier_occurrence():
    period, start = 4, 1
    n = start + 2 * period
    att = np.zeros((2, n, n))
    att[1] = np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]  # uniform causal
    for p in range(start + period, n):
        att[0, p, p - period + 1] = 1.0
    scores = induction_scores(att, period, start)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(np.mean([1 / (p + 1) for p in range(start + period, n)]))


def test_a_head_made_to_copy_scores_high_on_induction_and_random_vectors_low():
    # Keys carry the previous token's identity, queries their own: a query finds the key right
    # after the earlier occurrence of its token, which is the induction mechanism.
    rng = np.random.default_rng(4)
    period, vocab = 10, 40
    x = rng.choice(vocab, period, replace=False)
    seq = np.concatenate([[vocab], x, x])  # a BOS-like token first
    n = len(seq)
    onehot = np.eye(vocab + 1)
    q = SHARP * onehot[seq]
    k = np.vstack([np.zeros(vocab + 1), onehot[seq[:-1]]])
    att = item_attention(*one_head(q, k), 1.0, causal=True)
    assert induction_scores(att, period, start=1)[0] > 0.99
    q, k = rng.normal(size=(2, n, 8))
    random_att = item_attention(*one_head(q, k), 0.35, causal=True)
    assert induction_scores(random_att, period, start=1)[0] < THRESHOLDS["induction"]


def test_batched_attention_is_the_attention_rebuilt_item_by_item():
    rng = np.random.default_rng(5)
    lengths = [5, 7, 5, 5, 7]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    q, k = rng.normal(size=(2, offsets[-1], 3, 4))
    batches = item_batches(joined([text_tokens(n) for n in lengths]), offsets, np.arange(5), heads=3)
    assert sorted(len(b.position) for b in batches) == [5, 7]  # one batch per length
    for causal in (False, True):
        for b in batches:
            att = batch_attention(batch_scores(gather(q, offsets, b), gather(k, offsets, b), 0.5), causal)
            for row, i in enumerate(b.items):
                rows = slice(offsets[i], offsets[i + 1])
                np.testing.assert_allclose(att[row], item_attention(q[rows], k[rows], 0.5, causal), atol=1e-12)


def test_sample_items_takes_an_even_stride_within_the_budget():
    lengths = np.array([10] * 20)
    assert list(sample_items(lengths, 10_000)) == list(range(20))
    assert list(sample_items(lengths, 1000)) == list(range(0, 20, 2))
    assert list(sample_items(np.array([300]), 10)) == [0]  # always at least one item


def test_labels_follow_the_documented_order():
    base = {"entropy": 0.5, "distance": 4.0, "special": 0.0, "first": 0.0, "previous": 0.0, "self": 0.0,
            "next": None, "induction": None, "positional": 0.1, "token": 0.2}
    assert label(base) == ("content", "content (positional 0.10, entropy 0.50)")
    assert label({**base, "distance": 1.2}, "patches") == ("local", "local (mean distance 1.2 patches)")
    assert label({**base, "positional": 0.77}) == ("positional", "positional (0.77 of score variance)")
    # near-uniform attention is broad whatever explains its small differences (random init)
    assert label({**base, "positional": 0.77, "entropy": 0.95})[0] == "broad"
    # a previous-token head is positional too: the more specific name wins
    assert label({**base, "positional": 0.9, "previous": 0.83})[0] == "previous-token"
    assert label({**base, "previous": 0.83, "induction": 0.42}) == ("induction", "induction (0.42)")
    assert label({**base, "first": 0.71}) == ("sink", "attention sink (first token 0.71)")
