"""Grouped-query attention: which key/value head a query head shares, and a group's keys served once.

tiny-llama has 4 query heads per layer sharing 2 key/value heads (heads 0-1 and 2-3); the
store keeps keys per query head, as the model repeats them, so the files are the oracle.
"""

import numpy as np
import pytest

from .stored import manifest, stored_vectors


def keys_of(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    rows, dim = map(int, r.headers["x-shape"].split(","))
    return np.frombuffer(r.content, dtype="<f4").reshape(rows, dim)


def test_an_atlas_says_how_many_key_value_heads_its_layers_have(client, atlases, grouped):
    c, path = grouped
    llama = c.get(f"/api/atlases/{path.name}").json()
    assert (llama["heads"], llama["kv_heads"]) == (4, 2)
    assert [a["kv_heads"] for a in c.get("/api/atlases").json()] == [2]
    listed = {a["id"]: a["kv_heads"] for a in client.get("/api/atlases").json()}
    assert listed[atlases["gpt2"].name] == 4 and listed[atlases["vit"].name] == 4  # no grouping: one per head


@pytest.mark.parametrize("head,kv_head,group", [(0, 0, [0, 1]), (1, 0, [0, 1]), (2, 1, [2, 3]), (3, 1, [2, 3])])
def test_head_info_names_the_key_value_head_and_the_query_heads_sharing_it(grouped, head, kv_head, group):
    c, path = grouped
    body = c.get(f"/api/atlases/{path.name}/heads/1/{head}").json()
    assert (body["head"], body["kv_head"], body["kv_group"]) == (head, kv_head, group)


def test_without_grouping_every_head_is_its_own_key_value_head(client, gpt2):
    for layer in range(2):
        for head in range(4):
            body = client.get(f"{gpt2}/heads/{layer}/{head}").json()
            assert (body["kv_head"], body["kv_group"]) == (head, [head])


def test_a_groups_keys_are_served_once_and_equal_the_stored_keys_of_each_of_its_query_heads(grouped):
    c, path = grouped
    m = manifest(path)
    for layer in range(m["layers"]):
        for kv_head, group in ((0, [0, 1]), (1, [2, 3])):
            keys = keys_of(c.get(f"/api/atlases/{path.name}/kv/{layer}/{kv_head}/keys"))
            assert keys.shape == (m["tokens"], m["head_dim"])
            for head in group:
                np.testing.assert_array_equal(keys, stored_vectors(path, layer, head)[1])
        # the two groups' keys differ: the endpoint does not answer one head for all
        first, second = (keys_of(c.get(f"/api/atlases/{path.name}/kv/{layer}/{kv}/keys")) for kv in (0, 1))
        assert not np.array_equal(first, second)


def test_without_grouping_a_key_value_heads_keys_are_its_query_heads_keys(client, atlases, gpt2):
    np.testing.assert_array_equal(keys_of(client.get(f"{gpt2}/kv/1/3/keys")), stored_vectors(atlases["gpt2"], 1, 3)[1])


@pytest.mark.parametrize("side", ["query", "key"])
def test_a_heads_vectors_are_the_stored_vectors_as_float32(grouped, side):
    c, path = grouped
    got = keys_of(c.get(f"/api/atlases/{path.name}/heads/0/3/vectors", params={"side": side}))
    q, k = stored_vectors(path, 0, 3)
    np.testing.assert_array_equal(got, q if side == "query" else k)


def test_key_value_keys_have_an_etag_and_answer_304(grouped):
    c, path = grouped
    url = f"/api/atlases/{path.name}/kv/0/1/keys"
    r = c.get(url)
    again = c.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert c.get(f"/api/atlases/{path.name}/kv/0/0/keys").headers["etag"] != r.headers["etag"]
    assert c.get(f"/api/atlases/{path.name}/heads/0/2/vectors?side=key").headers["etag"] != r.headers["etag"]


@pytest.mark.parametrize("path,words", [
    ("/kv/0/2/keys", ["key/value head 2", "0..1"]),
    ("/kv/0/-1/keys", ["key/value head -1", "0..1"]),
    ("/kv/2/0/keys", ["layer 2", "0..1"]),
    ("/heads/0/4/vectors", ["head 4", "0..3"]),
])
def test_unknown_key_value_heads_and_heads_are_404_naming_the_range(grouped, path, words):
    c, atlas = grouped
    r = c.get(f"/api/atlases/{atlas.name}{path}")
    assert r.status_code == 404
    assert all(w in r.json()["detail"] for w in words), r.json()["detail"]


def test_a_bad_side_is_422_naming_the_choices(client, gpt2):
    r = client.get(f"{gpt2}/heads/0/0/vectors?side=value")
    assert r.status_code == 422 and "'side'" in r.json()["detail"] and "'query' or 'key'" in r.json()["detail"]
