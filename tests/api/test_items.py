import io

import numpy as np
import pytest
from PIL import Image

from qkatlas.joint import attention

from .stored import item_rows, manifest, stored_vectors


def stored_item_attention(atlas, item, layer, head):
    rows = item_rows(atlas, item)
    q, k = (v[rows] for v in stored_vectors(atlas, layer, head))
    m = manifest(atlas)
    return attention(q, k, m["scaling"][layer], m["causal"])


@pytest.mark.parametrize("name,item,layer,head", [("gpt2", 0, 1, 2), ("gpt2", 23, 0, 0), ("bert", 5, 1, 3)])
def test_item_attention_is_rebuilt_from_the_stored_vectors(client, atlases, name, item, layer, head):
    atlas = atlases[name]
    body = client.get(f"/api/atlases/{atlas.name}/items/{item}/attention", params={"layer": layer, "head": head}).json()
    A = np.asarray(body["attention"])
    rows = item_rows(atlas, item)
    assert (body["item"], body["layer"], body["head"]) == (item, layer, head)
    assert A.shape == (len(rows), len(rows))
    np.testing.assert_allclose(A.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(A, stored_item_attention(atlas, item, layer, head), atol=1e-12)
    assert [t["token"] for t in body["tokens"]] == rows.tolist()
    assert [t["position"] for t in body["tokens"]] == list(range(len(rows)))


def test_causal_attention_never_looks_ahead_and_bidirectional_does(client, atlases):
    gpt = np.asarray(client.get(f"/api/atlases/{atlases['gpt2'].name}/items/2/attention?layer=0&head=0").json()["attention"])
    assert np.all(gpt[np.triu_indices(len(gpt), 1)] == 0)
    bert = np.asarray(client.get(f"/api/atlases/{atlases['bert'].name}/items/2/attention?layer=0&head=0").json()["attention"])
    assert np.all(bert[np.triu_indices(len(bert), 1)] > 0)


def test_item_attention_without_head_has_every_head_of_the_layer(client, atlases, gpt2):
    body = client.get(f"{gpt2}/items/4/attention?layer=1").json()
    A = np.asarray(body["attention"])
    assert body["head"] is None and body["heads"] == 4 and A.shape[0] == 4
    for head in range(4):
        np.testing.assert_allclose(A[head], stored_item_attention(atlases["gpt2"], 4, 1, head), atol=1e-12)


def test_image_atlas_tokens_carry_patch_rows_and_columns(client, vit):
    tokens = client.get(f"{vit}/items/1/attention?layer=0&head=0").json()["tokens"]
    assert len(tokens) == 17 and tokens[0]["special"] and tokens[0]["row"] == -1
    assert (tokens[1]["row"], tokens[1]["col"]) == (0, 0) and (tokens[16]["row"], tokens[16]["col"]) == (3, 3)


def test_item_image_is_the_stored_png(client, atlases, vit):
    r = client.get(f"{vit}/items/2/image")
    assert r.headers["content-type"] == "image/png"
    assert r.content == (atlases["vit"] / "images" / "00002.png").read_bytes()
    assert client.get(f"{vit}/items/2/image", headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_patch_thumbnail_is_the_patch_pixels_enlarged(client, atlases, vit):
    r = client.get(f"{vit}/items/3/patches/7/image?size=32")  # position 7: patch 6 -> row 1, col 2
    thumb = np.asarray(Image.open(io.BytesIO(r.content)))
    assert r.headers["content-type"] == "image/png" and thumb.shape == (32, 32, 3)
    full = np.asarray(Image.open(atlases["vit"] / "images" / "00003.png").convert("RGB"))
    patch = full[16:32, 32:48]
    np.testing.assert_array_equal(thumb[::2, ::2], patch)
    assert client.get(f"{vit}/items/3/patches/7/image?size=32",
                      headers={"If-None-Match": r.headers["etag"]}).status_code == 304


@pytest.mark.parametrize("path,status,words", [
    ("/items/24/attention?layer=0", 404, ["item 24", "0..23"]),
    ("/items/-1/attention?layer=0", 404, ["item -1", "0..23"]),
    ("/items/0/attention", 422, ["'layer'", "required"]),
    ("/items/0/attention?layer=2", 404, ["layer 2", "0..1"]),
    ("/items/0/attention?layer=0&head=4", 404, ["head 4", "0..3"]),
    ("/items/0/image", 404, ["holds text", "no images"]),
    ("/items/0/patches/1/image", 404, ["holds text", "no images"]),
])
def test_item_errors_on_a_text_atlas(client, gpt2, path, status, words):
    r = client.get(gpt2 + path)
    assert r.status_code == status
    assert all(w in r.json()["detail"] for w in words), r.json()["detail"]


@pytest.mark.parametrize("path,status,words", [
    ("/items/6/image", 404, ["item 6", "0..5"]),
    ("/items/0/patches/0/image", 404, ["position 0", "not a patch", "1..16"]),
    ("/items/0/patches/17/image", 404, ["position 17", "1..16"]),
    ("/items/9/patches/3/image", 404, ["item 9", "0..5"]),
    ("/items/0/patches/3/image?size=4", 422, ["'size'", "8"]),
    ("/items/0/patches/3/image?size=1000", 422, ["'size'", "512"]),
])
def test_image_errors(client, vit, path, status, words):
    r = client.get(vit + path)
    assert r.status_code == status
    assert all(w in r.json()["detail"] for w in words), r.json()["detail"]
