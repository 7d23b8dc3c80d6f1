"""What the API answers, computed below the routers: pure functions on arrays checked against
answers known by hand, and the answers of a real atlas called without a server."""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from qkatlas.api.answers.atlases import summary
from qkatlas.api.answers.items import item_attention_answer
from qkatlas.api.registry import AtlasRegistry
from qkatlas.errors import InvalidInput, TooLarge
from qkatlas.item_attention import every_layer_attention, item_attention
from qkatlas.live_input import check_text, read_image
from qkatlas.manifest import ImageBlock
from qkatlas.neighbours import attention_neighbours, causal_hidden, distance_neighbours
from qkatlas.patches import patch_cell, patch_positions, patch_thumbnail

# ---------------------------------------------------------------------------------------
# item attention: 3 tokens, 2 heads, head_dim 1, scaling 0.5
# head 0: q = (0, 1, 1), k = (0, 2 ln 2, 2 ln 3), so q·k × 0.5 = q × (0, ln 2, ln 3):
# token 0 scores every key 0 (uniform); tokens 1 and 2 give the keys weights 1 : 2 : 3.
# head 1: q = 0, every score 0: uniform over the keys a token may see.

Q = np.array([[[0.0], [0.0]], [[1.0], [0.0]], [[1.0], [0.0]]])
K = np.array([[[0.0], [5.0]], [[2 * math.log(2)], [6.0]], [[2 * math.log(3)], [7.0]]])


def test_item_attention_of_one_head_is_the_softmax_of_scaled_dot_products():
    A = item_attention(Q, K, 0.5, causal=False, head=0)
    np.testing.assert_allclose(A, [[1 / 3, 1 / 3, 1 / 3], [1 / 6, 1 / 3, 1 / 2], [1 / 6, 1 / 3, 1 / 2]], atol=1e-15)
    assert A[1, 2] == pytest.approx(0.5, abs=1e-15)


def test_causal_item_attention_never_looks_ahead():
    A = item_attention(Q, K, 0.5, causal=True, head=0)
    np.testing.assert_allclose(A, [[1, 0, 0], [1 / 3, 2 / 3, 0], [1 / 6, 1 / 3, 1 / 2]], atol=1e-15)
    assert np.all(A[np.triu_indices(3, 1)] == 0.0)  # exactly zero, not merely small


def test_item_attention_without_a_head_has_every_head():
    A = item_attention(Q, K, 0.5, causal=True)
    assert A.shape == (2, 3, 3)
    np.testing.assert_array_equal(A[0], item_attention(Q, K, 0.5, causal=True, head=0))
    np.testing.assert_allclose(A[1], [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)


def test_every_layer_attention_stacks_layers_with_their_own_scaling():
    A = every_layer_attention([Q, Q], [K, K], [0.5, 0.0], causal=False)
    assert A.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(A[0], item_attention(Q, K, 0.5, causal=False))
    np.testing.assert_allclose(A[1], 1 / 3)  # scaling 0: every score 0


# ---------------------------------------------------------------------------------------
# neighbours named by (token, side)


def test_attention_neighbours_of_a_query_are_keys_and_of_a_key_are_queries():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    k = np.array([[2.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    assert attention_neighbours(q, k, 0.5, token=0, side="query", count=2) == [(0, "key", 1.0), (1, "key", 0.0)]
    assert attention_neighbours(q, k, 0.5, token=1, side="key", count=5) == [(1, "query", 1.5), (0, "query", 0.0)]


def test_distance_neighbours_name_rows_as_tokens_and_sides_without_the_point_itself():
    points = np.array([[0.0], [10.0], [20.0], [1.0], [11.0], [30.0]])  # queries of 3 tokens, then keys
    assert distance_neighbours(points, token=0, side="query", count=3) == \
        [(0, "key", 1.0), (1, "query", 10.0), (1, "key", 11.0)]
    assert distance_neighbours(points, token=2, side="key", count=1) == [(2, "query", 10.0)]


# Causal: two items, rows 0..2 (positions 0..2) and rows 3..4 (positions 0..1), head_dim 1, scaling 1.


def test_causal_mask_hides_later_keys_from_a_query_and_earlier_queries_from_a_key():
    assert causal_hidden(1, "query", 0, 3) == range(2, 3)
    assert causal_hidden(0, "query", 0, 3) == range(1, 3)
    assert causal_hidden(4, "query", 3, 5) == range(5, 5)  # the last token sees its whole item
    assert causal_hidden(4, "key", 3, 5) == range(3, 4)
    assert causal_hidden(3, "key", 3, 5) == range(3, 3)  # the first key is seen by every query of its item
    with pytest.raises(ValueError):
        causal_hidden(5, "query", 3, 5)


def test_causal_attention_neighbours_of_a_query_skip_its_own_later_keys_but_rank_other_items():
    q = np.ones((5, 1), dtype=np.float32)
    k = np.array([[1.0], [2.0], [9.0], [3.0], [0.0]], dtype=np.float32)  # key 2, the best, is later than query 1
    hidden = causal_hidden(1, "query", 0, 3)
    assert attention_neighbours(q, k, 1.0, 1, "query", 10, hidden) == \
        [(3, "key", 3.0), (1, "key", 2.0), (0, "key", 1.0), (4, "key", 0.0)]
    assert attention_neighbours(q, k, 1.0, 1, "query", 10)[0] == (2, "key", 9.0)  # unmasked, it would lead


def test_causal_attention_neighbours_of_a_key_skip_its_own_earlier_queries():
    q = np.array([[5.0], [1.0], [2.0], [0.0], [1.0]], dtype=np.float32)  # query 0, the best, is earlier than key 1
    k = np.full((5, 1), 2.0, dtype=np.float32)
    hidden = causal_hidden(1, "key", 0, 3)
    assert attention_neighbours(q, k, 1.0, 1, "key", 2, hidden) == [(2, "query", 4.0), (1, "query", 2.0)]
    assert attention_neighbours(q, k, 1.0, 1, "key", 10, hidden) == \
        [(2, "query", 4.0), (1, "query", 2.0), (4, "query", 2.0), (3, "query", 0.0)]


# ---------------------------------------------------------------------------------------
# live input checks


def png_bytes(size, mode="RGB", colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_live_text_must_be_non_empty_and_within_the_character_limit(settings):
    check_text("hi", settings)
    with pytest.raises(InvalidInput, match="empty"):
        check_text(" \n", settings)
    with pytest.raises(TooLarge, match="max_text_chars"):
        check_text("a" * (settings.max_text_chars + 1), settings)


def test_an_upload_is_read_as_an_rgb_image_within_the_limits(settings):
    assert read_image(png_bytes((5, 4), "RGBA", (1, 2, 3, 4)), settings).mode == "RGB"
    with pytest.raises(TooLarge, match="max_upload_bytes"):
        read_image(b"x" * (settings.max_upload_bytes + 1), settings)
    with pytest.raises(TooLarge, match="5x4 = 20 pixels"):
        read_image(png_bytes((5, 4)), settings.with_(max_image_pixels=19))
    for bad in (b"", b"not an image"):
        with pytest.raises(InvalidInput, match="image"):
            read_image(bad, settings)


# ---------------------------------------------------------------------------------------
# patches: an 8x8 image of 4x4 patches, one CLS token first


SPEC = ImageBlock(size=8, patch=4, grid=2, prefix_tokens=1)


def test_patch_positions_follow_the_prefix_tokens_row_by_row():
    assert patch_positions(SPEC, 5) == range(1, 5)
    assert [patch_cell(SPEC, p) for p in range(1, 5)] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_patch_thumbnail_is_the_patch_pixels_enlarged(tmp_path):
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[4:, 4:] = (10, 200, 30)  # the bottom-right patch, token position 4
    pixels[5, 6] = (255, 255, 255)
    Image.fromarray(pixels).save(tmp_path / "img.png")
    thumb = np.asarray(Image.open(io.BytesIO(patch_thumbnail(tmp_path / "img.png", SPEC, 4, 8))))
    assert thumb.shape == (8, 8, 3)
    np.testing.assert_array_equal(thumb[::2, ::2], pixels[4:, 4:])


# ---------------------------------------------------------------------------------------
# answers of a real atlas, no server


@pytest.fixture(scope="module")
def served(settings, atlases):
    return AtlasRegistry(settings.data_dir).get(atlases["gpt2"].name)


def test_answers_are_plain_data(served):
    body = item_attention_answer(served, 2, 0, 0)
    A = np.asarray(body["attention"])
    assert len(body["tokens"]) == len(A) and np.all(A[np.triu_indices(len(A), 1)] == 0)  # tiny-gpt2 is causal
    assert json.loads(json.dumps(summary(served)))["total_heads"] == 8


def test_item_vectors_are_read_once_then_come_from_the_cache(served):
    first = served.item_vectors(3, 1)
    assert first[0].shape == (len(served.item_tokens(3)), 4, served.manifest.head_dim)
    assert served.item_vectors(3, 1)[0] is first[0]
