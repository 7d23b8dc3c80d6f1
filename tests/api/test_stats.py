"""Head statistics, the map of heads and two atlases side by side, over HTTP on the real tiny atlases."""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from qkatlas.stats import DEFINITIONS, KINDS

from .stored import manifest, stored_vectors


def _items(atlas) -> list[tuple[int, int]]:
    """(start, stop) token rows of every item, from tokens.parquet."""
    items = pq.read_table(atlas / "tokens.parquet").column("item").to_numpy()
    edges = np.concatenate([[0], np.flatnonzero(np.diff(items)) + 1, [len(items)]])
    return list(zip(edges[:-1], edges[1:]))


def _oracle_previous_and_entropy(atlas, layer: int, head: int) -> tuple[float, float]:
    """Offset -1 mass and normalised entropy of one causal head, item by item with plain numpy."""
    q, k = stored_vectors(atlas, layer, head)
    scaling = manifest(atlas)["scaling"][layer]
    previous, entropy = [], []
    for a, b in _items(atlas):
        s = (q[a:b].astype(np.float64) @ k[a:b].T.astype(np.float64)) * scaling
        n = b - a
        for i in range(n):
            row = np.exp(s[i, : i + 1] - s[i, : i + 1].max())
            row /= row.sum()
            if i >= 1:
                previous.append(row[i - 1])
                entropy.append(-(row * np.log(np.where(row > 0, row, 1))).sum() / np.log(i + 1))
    return float(np.mean(previous)), float(np.mean(entropy))


def test_stats_hold_one_row_per_head_with_the_definitions_and_label_rules(client, gpt2, atlases):
    body = client.get(f"{gpt2}/stats").json()
    m = manifest(atlases["gpt2"])
    assert body["n"] == m["layers"] * m["heads"]
    cols = body["columns"]
    assert cols["layer"] == [layer for layer in range(m["layers"]) for _ in range(m["heads"])]
    assert cols["head"] == list(range(m["heads"])) * m["layers"]
    assert set(body["definitions"]) == set(DEFINITIONS) <= set(cols)
    assert all(kind in KINDS for kind in cols["kind"])
    assert all(label.startswith(("induction", "previous", "next", "self", "attention sink", "special", "positional",
                                 "broad", "local", "content")) for label in cols["label"])
    # tiny GPT-2 is causal: no query sees its next token, and induction was measured
    assert cols["next"] == [None] * body["n"]
    assert all(0 <= v < 0.3 for v in cols["induction"])  # random init does not copy
    assert body["distance_unit"] == "tokens" and body["sample"]["items"] == m["corpus"]["items"]


def test_stats_equal_plain_numpy_on_the_stored_vectors(client, gpt2, atlases):
    cols = client.get(f"{gpt2}/stats").json()["columns"]
    heads = manifest(atlases["gpt2"])["heads"]
    for layer, head in ((0, 1), (1, 3)):
        previous, entropy = _oracle_previous_and_entropy(atlases["gpt2"], layer, head)
        row = layer * heads + head
        assert cols["previous"][row] == pytest.approx(previous, abs=1e-9)
        assert cols["entropy"][row] == pytest.approx(entropy, abs=1e-9)


def test_image_stats_count_distance_in_patches_and_have_no_token_share(client, vit):
    body = client.get(f"{vit}/stats").json()
    assert body["distance_unit"] == "patches"
    assert body["columns"]["token"] == [None] * body["n"]
    assert body["columns"]["induction"] == [None] * body["n"]  # a ViT is not causal
    assert all(0 <= d <= 4 * 2 ** 0.5 for d in body["columns"]["distance"])  # a 4 x 4 grid


def test_stats_download_as_csv_and_parquet_with_a_file_name(client, gpt2, atlases):
    cols = client.get(f"{gpt2}/stats").json()["columns"]
    r = client.get(f"{gpt2}/stats", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="{atlases["gpt2"].name}-stats.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["head"]) for row in rows] == cols["head"]
    assert [row["label"] for row in rows] == cols["label"]
    assert [float(row["entropy"]) for row in rows] == pytest.approx(cols["entropy"])
    assert {row["next"] for row in rows} == {""}  # null is an empty cell
    r = client.get(f"{gpt2}/stats", params={"format": "parquet"})
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("label").to_pylist() == cols["label"]
    assert table.column("positional").to_pylist() == pytest.approx(cols["positional"])
    again = client.get(f"{gpt2}/stats", params={"format": "parquet"}, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_head_info_carries_the_heads_statistics_and_label(client, gpt2):
    cols = client.get(f"{gpt2}/stats").json()["columns"]
    info = client.get(f"{gpt2}/heads/1/2").json()
    row = 1 * 4 + 2
    assert info["stats"]["label"] == cols["label"][row] and info["stats"]["kind"] == cols["kind"][row]
    assert {name: info["stats"][name] for name in DEFINITIONS} == {name: cols[name][row] for name in DEFINITIONS}


def test_the_head_map_places_every_head_with_its_nearest_heads(client, gpt2):
    body = client.get(f"{gpt2}/headmap", params={"neighbours": 3}).json()
    points = body["points"]
    assert [(p["layer"], p["head"]) for p in points] == [(layer, head) for layer in range(2) for head in range(4)]
    assert all(np.isfinite([p["x"], p["y"]]).all() for p in points)
    assert -1 <= body["fit"]["correlation"] <= 1 and body["fit"]["rows"] > 0
    distance = {}
    for p in points:
        near = p["nearest"]
        assert len(near) == 3 and (p["layer"], p["head"]) not in {(n["layer"], n["head"]) for n in near}
        assert [n["distance"] for n in near] == sorted(n["distance"] for n in near)
        assert all(0 <= n["distance"] <= 1 for n in near)
        for n in near:
            distance[(p["layer"], p["head"]), (n["layer"], n["head"])] = n["distance"]
    for (a, b), d in distance.items():  # a distance: the same both ways
        if (b, a) in distance:
            assert distance[b, a] == pytest.approx(d, abs=1e-6)


def test_statistics_not_computed_yet_are_409_saying_how_to_compute_them(scratch):
    client, copy = scratch
    (copy / "stats.parquet").unlink()
    base = f"/api/atlases/{copy.name}"
    for url in (f"{base}/stats", f"{base}/headmap", f"{base}/stats?format=csv"):
        r = client.get(url)
        assert r.status_code == 409, url
        assert "not computed yet" in r.json()["detail"] and f"qkatlas stats {copy.name}" in r.json()["detail"]
    assert client.get(f"{base}/heads/0/0").json()["stats"] is None


@pytest.mark.parametrize("url,status,words", [
    ("/stats?format=xls", 422, ["format", "xls"]),
    ("/headmap?neighbours=-1", 422, ["neighbours"]),
    ("/headmap?neighbours=51", 422, ["neighbours"]),
])
def test_bad_statistics_parameters_are_4xx_naming_them(client, gpt2, url, status, words):
    r = client.get(gpt2 + url)
    assert r.status_code == status
    assert all(w in r.json()["detail"] for w in words)


def test_unknown_atlas_statistics_are_404(client):
    r = client.get("/api/atlases/nope/stats")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


# ---- two atlases side by side ---------------------------------------------------------------


def test_two_models_on_one_corpus_are_comparable_token_by_character(client, atlases):
    a, b = atlases["gpt2"].name, atlases["bert"].name
    body = client.get("/api/compare", params={"a": a, "b": b}).json()
    assert body["same_corpus"] and not body["same_model"]
    assert body["token_match"] == "character spans"
    assert body["a"]["causal"] and not body["b"]["causal"] and body["a"]["stats"] and body["b"]["stats"]


def _clean(text: str) -> str:
    return text.replace("##", "").strip().lower()


def test_a_gpt2_token_matches_the_wordpiece_tokens_over_the_same_characters(client, atlases):
    a, b = atlases["gpt2"].name, atlases["bert"].name
    tokens_a = client.get(f"/api/atlases/{a}/items/0/attention", params={"layer": 0, "head": 0}).json()["tokens"]
    sentence = client.get(f"/api/atlases/{a}/items").json()["columns"]["text"][0].lower()
    for t in tokens_a:
        body = client.get("/api/compare/tokens", params={"a": a, "b": b, "token": t["token"]}).json()
        assert body["how"] == "character spans" and body["token"]["text"] == t["text"]
        matched = [m for m in body["matches"]]
        assert all(m["item"] == 0 for m in matched)
        word = _clean(t["text"])
        if word and word.isascii():
            # B's tokens over the same characters spell the word (WordPiece may cut it, or join it to more)
            spelled = "".join(_clean(m["text"]) for m in matched)
            assert word in spelled or spelled in word, (t["text"], [m["text"] for m in matched])
            assert spelled in sentence


def test_special_tokens_match_special_tokens_of_the_same_text(client, atlases):
    bert = atlases["bert"].name
    body = client.get("/api/compare/tokens", params={"a": bert, "b": bert, "token": 0}).json()
    assert body["token"]["text"] == "[CLS]" and [m["token"] for m in body["matches"]] == [0]


def test_tokens_of_text_and_image_atlases_cannot_be_matched(client, atlases):
    r = client.get("/api/compare/tokens", params={"a": atlases["gpt2"].name, "b": atlases["vit"].name, "token": 1})
    assert r.status_code == 422 and "holds text" in r.json()["detail"]
    body = client.get("/api/compare", params={"a": atlases["gpt2"].name, "b": atlases["vit"].name}).json()
    assert body["token_match"] is None and not body["same_corpus"]


def test_an_image_patch_matches_itself_in_the_same_atlas(client, atlases):
    vit = atlases["vit"].name
    for token in (0, 1, 7, 16):
        body = client.get("/api/compare/tokens", params={"a": vit, "b": vit, "token": token}).json()
        assert body["how"] == "image regions" and [m["token"] for m in body["matches"]] == [token]


@pytest.mark.parametrize("params,status,words", [
    ({"a": "nope", "b": "x"}, 404, ["nope"]),
    ({"b": "x"}, 422, ["'a'", "required"]),
])
def test_bad_comparisons_are_4xx_naming_the_value(client, params, status, words):
    r = client.get("/api/compare", params=params)
    assert r.status_code == status
    assert all(w in r.json()["detail"] for w in words)


def test_a_token_out_of_range_is_404_naming_the_range(client, atlases):
    a = atlases["gpt2"].name
    r = client.get("/api/compare/tokens", params={"a": a, "b": a, "token": 10 ** 6})
    assert r.status_code == 404 and "valid tokens" in r.json()["detail"]
