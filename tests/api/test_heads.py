import json

import numpy as np
import pytest

from qkatlas.layout import Layout
from .stored import causally_seen, manifest, stored_joint_cloud, stored_projection, stored_vectors

# ---------------------------------------------------------------------------------------
# one head: metadata, points, norms


def test_head_info_lists_layouts_and_the_joint_transform(client, atlases, gpt2):
    body = client.get(f"{gpt2}/heads/1/2").json()
    assert body["layer"] == 1 and body["head"] == 2
    assert set(body["projections"]) == {"pca-2d", "pca-3d"}
    for key, p in body["projections"].items():
        stored = json.loads((atlases["gpt2"] / "projections" / key / "L01H02.json").read_text())
        assert p == {name: stored[name] for name in ("params", "quality", "seconds", "points")}
    assert len(body["projections"]["pca-2d"]["params"]["explained_variance_ratio"]) == 2
    with np.load(atlases["gpt2"] / "joint.npz") as z:
        assert body["joint"]["scale"] == pytest.approx(float(z["scale"][1, 2]))
        assert body["joint"]["translation_norm"] == pytest.approx(float(np.linalg.norm(z["translation"][1, 2])))


def _rank_agreement_by_scipy(atlas, points, q, k) -> float:
    """Mean over queries (those seeing 3 keys or more) of scipy's Spearman between -distance and q·k
    over the keys of the query's own item it sees: an oracle independent of agreement.py."""
    import pyarrow.parquet as pq
    from scipy.stats import spearmanr

    items = pq.read_table(atlas / "tokens.parquet").column("item").to_numpy()
    n, causal = len(q), manifest(atlas)["causal"]
    rhos = []
    for t in range(n):
        keys = np.flatnonzero(items == items[t])
        keys = keys[keys <= t] if causal else keys
        if len(keys) >= 3:
            rho = spearmanr(-np.linalg.norm(points[n + keys] - points[t], axis=1), k[keys] @ q[t]).statistic
            if np.isfinite(rho):
                rhos.append(rho)
    return float(np.mean(rhos))


def test_head_info_says_how_the_joint_space_and_each_layout_agree_with_attention(client, atlases, gpt2):
    body = client.get(f"{gpt2}/heads/1/1").json()
    joint = body["joint"]
    assert joint["method"] == manifest(atlases["gpt2"])["joint"] == "qkatlas"
    q, k = stored_vectors(atlases["gpt2"], 1, 1)
    # the build scored the captured float32 vectors, the oracle the stored ones
    assert joint["joint"]["attention_agreement"] == pytest.approx(
        _rank_agreement_by_scipy(atlases["gpt2"], stored_joint_cloud(atlases["gpt2"], 1, 1), q, k), abs=0.01)
    assert joint["raw"]["attention_agreement"] == pytest.approx(
        _rank_agreement_by_scipy(atlases["gpt2"], np.concatenate([q, k]), q, k), abs=0.01)
    assert joint["joint"]["attention_agreement"] >= joint["raw"]["attention_agreement"]
    assert joint["joint"]["distance_dot_pearson"] <= joint["raw"]["distance_dot_pearson"]
    pca = body["projections"]["pca-2d"]["quality"]
    assert pca["attention_agreement"] == pytest.approx(
        _rank_agreement_by_scipy(atlases["gpt2"], stored_projection(atlases["gpt2"], 1, 1), q, k), abs=1e-3)
    assert -1 <= pca["distance_dot_pearson"] <= 1


@pytest.mark.parametrize("dim", [2, 3])
def test_points_binary_decodes_to_exactly_the_stored_array(client, atlases, gpt2, dim):
    r = client.get(f"{gpt2}/heads/1/3/points?method=pca&dim={dim}")
    stored = stored_projection(atlases["gpt2"], 1, 3, "pca", dim)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-shape"] == f"{stored.shape[0]},{dim}" and r.headers["x-tokens"] == str(stored.shape[0] // 2)
    np.testing.assert_array_equal(np.frombuffer(r.content, dtype="<f4").reshape(stored.shape), stored)


def test_points_json_is_the_same_array(client, atlases, gpt2):
    body = client.get(f"{gpt2}/heads/0/0/points?format=json").json()
    stored = stored_projection(atlases["gpt2"], 0, 0)
    assert body["shape"] == list(stored.shape)
    np.testing.assert_array_equal(np.asarray(body["points"], dtype=np.float32), stored)


def test_points_etag_answers_304_and_differs_per_head(client, atlases, gpt2):
    r = client.get(f"{gpt2}/heads/0/1/points")
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert client.get(f"{gpt2}/heads/0/1/points", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get(f"{gpt2}/heads/0/1/points", headers={"If-None-Match": '"other", ' + r.headers["etag"]}
                      ).status_code == 304
    other = client.get(f"{gpt2}/heads/0/2/points", headers={"If-None-Match": r.headers["etag"]})
    assert other.status_code == 200 and other.headers["etag"] != r.headers["etag"]
    np.testing.assert_array_equal(np.frombuffer(other.content, "<f4").reshape(-1, 2),
                                  stored_projection(atlases["gpt2"], 0, 2))


def test_norms_are_the_joint_space_norms(client, atlases, gpt2):
    r = client.get(f"{gpt2}/heads/1/1/norms")
    expected = np.linalg.norm(stored_joint_cloud(atlases["gpt2"], 1, 1), axis=1)
    assert r.headers["x-shape"] == str(len(expected))
    np.testing.assert_allclose(np.frombuffer(r.content, dtype="<f4"), expected, rtol=1e-6)


def test_a_projection_written_while_serving_is_served_at_once(scratch):
    c, copy = scratch
    npy = copy / "projections" / "pca-2d" / "L01H03.npy"
    moved = npy.with_suffix(".bak")
    npy.rename(moved)
    base = f"/api/atlases/{copy.name}/heads/1/3/points"
    r = c.get(base)
    assert r.status_code == 409 and "not computed yet" in r.json()["detail"]
    moved.rename(npy)
    np.testing.assert_array_equal(np.frombuffer(c.get(base).content, "<f4").reshape(-1, 2), np.load(npy))


# ---------------------------------------------------------------------------------------
# matrix


def decode_matrix(r):
    P, L, H, D = (int(r.headers[h]) for h in ("x-points", "x-layers", "x-heads", "x-dim"))
    rows = np.frombuffer(r.content[: 4 * P], dtype="<i4")
    coords = np.frombuffer(r.content[4 * P:], dtype="<f4").reshape(L, H, P, D)
    return rows, coords


def test_matrix_holds_every_head_on_the_same_sample_of_rows(client, atlases, gpt2):
    n = manifest(atlases["gpt2"])["tokens"]
    r = client.get(f"{gpt2}/matrix?method=pca&dim=2&max_points=100")
    rows, coords = decode_matrix(r)
    assert coords.shape == (2, 4, 100, 2) and r.headers["x-missing"] == "0"
    tokens = rows[:50]
    np.testing.assert_array_equal(rows[50:], tokens + n)  # each sampled token's query row, then its key row
    assert len(set(tokens)) == 50 and tokens[0] == 0 and np.all(np.diff(tokens) > 0)
    for layer in range(2):
        for head in range(4):
            np.testing.assert_array_equal(coords[layer, head], stored_projection(atlases["gpt2"], layer, head)[rows])


def test_matrix_with_room_for_all_points_has_them_all(client, atlases, gpt2):
    n = manifest(atlases["gpt2"])["tokens"]
    rows, coords = decode_matrix(client.get(f"{gpt2}/matrix?dim=3&max_points=100000"))
    np.testing.assert_array_equal(rows, np.arange(2 * n))
    np.testing.assert_array_equal(coords[1, 0], stored_projection(atlases["gpt2"], 1, 0, "pca", 3))


def test_matrix_etag_and_cache(client, gpt2):
    r = client.get(f"{gpt2}/matrix")
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert client.get(f"{gpt2}/matrix", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get(f"{gpt2}/matrix?max_points=10").headers["etag"] != r.headers["etag"]


def test_matrix_heads_not_computed_are_nan_and_counted(scratch, atlases):
    c, copy = scratch
    for name in ("L00H01", "L01H03"):
        (copy / "projections" / "pca-2d" / f"{name}.npy").unlink()
    url = f"/api/atlases/{copy.name}/matrix?max_points=40"
    r = c.get(url)
    assert r.status_code == 200 and r.headers["x-missing"] == "2" and r.headers["cache-control"] == "no-cache"
    rows, coords = decode_matrix(r)
    assert np.isnan(coords[0, 1]).all() and np.isnan(coords[1, 3]).all()
    np.testing.assert_array_equal(coords[0, 0], stored_projection(copy, 0, 0)[rows])
    # a head finished by a running build shows up at once, and changes the ETag
    src = atlases["gpt2"] / "projections" / "pca-2d" / "L00H01.npy"
    (copy / "projections" / "pca-2d" / "L00H01.npy").write_bytes(src.read_bytes())
    again = c.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 200 and again.headers["x-missing"] == "1"
    np.testing.assert_array_equal(decode_matrix(again)[1][0, 1], stored_projection(atlases["gpt2"], 0, 1)[rows])


def test_matrix_of_a_layout_never_started_is_all_nan(client, gpt2):
    r = client.get(f"{gpt2}/matrix?method=umap&max_points=10")
    assert r.status_code == 200 and r.headers["x-missing"] == "8"
    assert np.isnan(decode_matrix(r)[1]).all()


# ---------------------------------------------------------------------------------------
# neighbours, checked against a brute-force numpy answer over the whole corpus


def neighbours(client, base, layer, head, **params):
    r = client.get(f"{base}/heads/{layer}/{head}/neighbours", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def ranked_by_attention(atlas, layer, head, token, side) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores): every key a query may see (or query that may see a key), highest score first."""
    q, k = stored_vectors(atlas, layer, head)
    x, others = (q[token], k) if side == "query" else (k[token], q)
    scores = (others @ x) * manifest(atlas)["scaling"][layer]
    seen = np.flatnonzero(causally_seen(atlas, token, side))
    rows = seen[np.argsort(-scores[seen], kind="stable")]
    return rows, scores


@pytest.mark.parametrize("layer,head,token", [(0, 1, 3), (1, 2, 40), (1, 0, 0)])
def test_attention_neighbours_of_a_query_are_the_keys_it_scores_highest(client, atlases, gpt2, layer, head, token):
    q, k = stored_vectors(atlases["gpt2"], layer, head)
    scaling = manifest(atlases["gpt2"])["scaling"][layer]
    rows, scores = ranked_by_attention(atlases["gpt2"], layer, head, token, "query")
    expected = rows[:10]
    body = neighbours(client, gpt2, layer, head, token=token, side="query", k=10, by="attention")
    got = body["neighbours"]
    assert body["token"]["token"] == token and body["token"]["side"] == "query" and body["by"] == "attention"
    assert body["metric"] == "q·k × scaling (highest first; causal: later keys of its own item left out)"
    assert [n["token"] for n in got] == expected.tolist()
    assert all(n["side"] == "key" for n in got)
    np.testing.assert_allclose([n["score"] for n in got], scores[expected], rtol=1e-6)
    exact = (k.astype(np.float64) @ q[token].astype(np.float64)) * scaling  # and to float64 precision
    np.testing.assert_allclose([n["score"] for n in got], exact[expected], rtol=1e-5, atol=1e-6)


def test_attention_neighbours_of_a_key_are_the_queries_scoring_it_highest(client, atlases):
    base = f"/api/atlases/{atlases['bert'].name}"
    q, k = stored_vectors(atlases["bert"], 1, 3)
    scores = (q @ k[17]) * manifest(atlases["bert"])["scaling"][1]
    expected = np.argsort(-scores, kind="stable")[:25]
    got = neighbours(client, base, 1, 3, token=17, side="key", k=25)["neighbours"]
    assert [n["token"] for n in got] == expected.tolist() and {n["side"] for n in got} == {"query"}
    np.testing.assert_allclose([n["score"] for n in got], scores[expected], rtol=1e-6)


def test_neighbours_name_each_token(client, atlases, gpt2):
    import pyarrow.parquet as pq

    tokens = pq.read_table(atlases["gpt2"] / "tokens.parquet").to_pylist()
    body = neighbours(client, gpt2, 0, 0, token=9, k=5)
    for ref in [body["token"], *body["neighbours"]]:
        t = tokens[ref["token"]]
        assert (ref["text"], ref["item"], ref["position"]) == (t["text"], t["item"], t["position"])


@pytest.mark.parametrize("side", ["query", "key"])
def test_joint_neighbours_are_nearest_of_either_side_without_itself(client, atlases, gpt2, side):
    X = stored_joint_cloud(atlases["gpt2"], 1, 1)
    n = len(X) // 2
    row = 7 if side == "query" else n + 7
    d = np.linalg.norm(X - X[row], axis=1)
    d[row] = np.inf
    expected = np.argsort(d, kind="stable")[:12]
    got = neighbours(client, gpt2, 1, 1, token=7, side=side, k=12, by="joint")["neighbours"]
    assert [(n["token"], n["side"]) for n in got] == [(r % n, "query" if r < n else "key") for r in expected]
    np.testing.assert_allclose([g["score"] for g in got], d[expected], rtol=1e-5, atol=1e-6)


def test_joint_neighbours_break_ties_by_token_order(client, atlases, gpt2):
    # Causal GPT-2: the first token of every sentence sees only itself, so equal first words
    # give identical vectors, at distance 0 from each other.
    import pyarrow.parquet as pq

    tokens = pq.read_table(atlases["gpt2"] / "tokens.parquet").to_pylist()
    firsts = [t["token"] for t in tokens if t["position"] == 0 and t["text"] == "The"]
    assert len(firsts) >= 3
    got = neighbours(client, gpt2, 0, 0, token=firsts[0], k=len(firsts) - 1, by="joint")["neighbours"]
    assert [(n["token"], n["score"]) for n in got] == [(t, 0.0) for t in firsts[1:]]


@pytest.mark.parametrize("dim", [2, 3])
def test_projection_neighbours_are_nearest_in_the_stored_layout(client, atlases, gpt2, dim):
    Y = stored_projection(atlases["gpt2"], 0, 3, "pca", dim)
    n = len(Y) // 2
    d = np.linalg.norm(Y - Y[n + 20], axis=1)
    d[n + 20] = np.inf
    expected = np.argsort(d, kind="stable")[:8]
    got = neighbours(client, gpt2, 0, 3, token=20, side="key", k=8, by="projection", method="pca", dim=dim)
    assert [(g["token"], g["side"]) for g in got["neighbours"]] == [(r % n, "query" if r < n else "key")
                                                                    for r in expected]
    assert "pca" in got["metric"]


def test_k_larger_than_the_corpus_returns_every_candidate(client, atlases, gpt2):
    bert = f"/api/atlases/{atlases['bert'].name}"
    n = manifest(atlases["bert"])["tokens"]
    assert len(neighbours(client, bert, 0, 0, token=1, k=1000)["neighbours"]) == n
    n = manifest(atlases["gpt2"])["tokens"]
    hidden = (~causally_seen(atlases["gpt2"], 1, "query")).sum()
    assert hidden > 0 and len(neighbours(client, gpt2, 0, 0, token=1, k=1000)["neighbours"]) == n - hidden
    assert len(neighbours(client, gpt2, 0, 0, token=1, k=1000, by="joint")["neighbours"]) == 2 * n - 1


@pytest.mark.parametrize("item", [0, 7, 23])
@pytest.mark.parametrize("side", ["query", "key"])
def test_causal_attention_neighbours_never_cross_the_mask_for_any_token_of_an_item(client, atlases, gpt2, item, side):
    """tiny-gpt2 is causal: a query never gets a later key of its own sentence, a key never an
    earlier query of it; the ranking is the full one with only those left out."""
    import pyarrow.parquet as pq

    tokens = pq.read_table(atlases["gpt2"] / "tokens.parquet").to_pylist()
    rows = [t["token"] for t in tokens if t["item"] == item]
    for token in rows:
        p = tokens[token]["position"]
        body = neighbours(client, gpt2, 1, 3, token=token, side=side, k=1000, by="attention")
        got = [n["token"] for n in body["neighbours"]]
        own = [n["position"] for n in body["neighbours"] if n["item"] == item]
        assert all(q <= p for q in own) if side == "query" else all(q >= p for q in own), (token, own)
        assert len(own) == (p + 1 if side == "query" else len(rows) - p)  # every visible one is ranked
        assert got == ranked_by_attention(atlases["gpt2"], 1, 3, token, side)[0].tolist()


def test_bidirectional_attention_neighbours_rank_every_key_of_the_own_item(client, atlases):
    base = f"/api/atlases/{atlases['bert'].name}"
    body = neighbours(client, base, 0, 2, token=0, k=1000)
    assert body["metric"] == "q·k × scaling (highest first)"
    assert len(body["neighbours"]) == manifest(atlases["bert"])["tokens"]


# ---------------------------------------------------------------------------------------
# errors: a 4xx whose message names the bad value and the valid range


@pytest.mark.parametrize("path,status,words", [
    ("/heads/2/0", 404, ["layer 2", "0..1"]),
    ("/heads/-1/0/points", 404, ["layer -1", "0..1"]),
    ("/heads/0/4/norms", 404, ["head 4", "0..3"]),
    ("/heads/0/9/neighbours?token=0", 404, ["head 9", "0..3"]),
    ("/heads/0/0/neighbours?token=100000", 404, ["token 100000", "0..255"]),
    ("/heads/0/0/neighbours?token=-1", 404, ["token -1", "0..255"]),
    ("/heads/0/0/neighbours", 422, ["'token'", "required"]),
    ("/heads/0/0/neighbours?token=0&k=0", 422, ["'k'", "greater than or equal to 1"]),
    ("/heads/0/0/neighbours?token=0&k=1001", 422, ["'k'", "1000"]),
    ("/heads/0/0/neighbours?token=0&side=both", 422, ["'side'", "'query' or 'key'"]),
    ("/heads/0/0/neighbours?token=0&by=cosine", 422, ["'by'", "'attention', 'joint' or 'projection'"]),
    ("/heads/0/0/neighbours?token=0&by=projection&method=lda", 404, ["'lda'", "pca, umap, tsne"]),
    ("/heads/0/0/neighbours?token=0&by=projection&method=tsne", 409, ["tsne 2-D", "not computed yet"]),
    ("/heads/0/0/points?method=lda", 404, ["'lda'", "pca, umap, tsne"]),
    ("/heads/0/0/points?dim=4", 422, ["'dim'", "3"]),
    ("/heads/0/0/points?dim=two", 422, ["'dim'", "integer"]),
    ("/heads/0/0/points?format=npy", 422, ["'format'", "'binary' or 'json'"]),
    ("/heads/0/0/points?method=umap", 409, ["umap 2-D", "not computed yet", "0 of 8"]),
    ("/heads/x/0", 422, ["'layer'", "integer"]),
    ("/matrix?max_points=0", 422, ["'max_points'", "1"]),
    ("/matrix?max_points=100001", 422, ["'max_points'", "100000"]),
    ("/matrix?method=lda", 404, ["'lda'", "pca, umap, tsne"]),
    ("/matrix?dim=1", 422, ["'dim'", "2"]),
])
def test_bad_requests_get_a_4xx_naming_the_problem(client, gpt2, path, status, words):
    r = client.get(gpt2 + path)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    for word in words:
        assert word in detail, (word, detail)


def test_matrix_is_assembled_once_then_served_from_memory(client, atlases, gpt2):
    served = client.app.state.atlases.get(atlases["gpt2"].name)
    assert served.matrix(Layout("pca", 3), 66, cached_only=True) is None
    first = client.get(f"{gpt2}/matrix?dim=3&max_points=66")
    assert served.matrix(Layout("pca", 3), 66, cached_only=True) is not None
    assert client.get(f"{gpt2}/matrix?dim=3&max_points=66").content == first.content
