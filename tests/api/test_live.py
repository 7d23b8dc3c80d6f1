"""Live inference through the atlas's own model: the same random-init tiny models the atlases were built with."""

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from qkatlas.api.app import create_app
from qkatlas.layout import Layout
from qkatlas.reduce.run import reduce_layout
from qkatlas.serve import serve_in_thread

from .conftest import warmed, with_catalog_entry
from .stored import item_rows, stored_projection

# The atlas keeps float16 vectors and live input runs in float32: that rounding is the whole
# difference. Measured over every item, layer, head and dim of the tiny atlases (24 sentences
# of tiny-gpt2 and tiny-bert, 6 images of tiny-vit), the largest errors were: attention
# 7.4e-6 (text), 2.5e-6 (image); placed points 2.9e-4 (text), 2.7e-4 (image) of the layout's
# spread (max |coordinate|). The tolerances are about ten times those.
TEXT_ATTENTION_ATOL = 1e-4
IMAGE_ATTENTION_ATOL = 3e-5
POINTS_ATOL = 3e-3  # times the layout's spread


def assert_placed_like_the_atlas(points: dict, atlas, item: int, layer: int, head: int, method="pca", dim=2):
    """The live points equal the stored layout's rows of the same item's tokens."""
    Y = stored_projection(atlas, layer, head, method, dim)
    n, rows = len(Y) // 2, item_rows(atlas, item)
    assert (points["layer"], points["head"], points["method"], points["dim"]) == (layer, head, method, dim)
    np.testing.assert_allclose(points["queries"], Y[rows], atol=POINTS_ATOL * np.abs(Y).max())
    np.testing.assert_allclose(points["keys"], Y[n + rows], atol=POINTS_ATOL * np.abs(Y).max())
    assert points["how"] and 0 <= points["seconds"] < 10


def png(size=(64, 64), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_live_text_attention_equals_the_atlas_attention_of_the_same_sentence(client, atlases, gpt2):
    text = client.get(f"{gpt2}/items").json()["columns"]["text"][3]
    r = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    A = np.asarray(body["attention"])
    assert body["model"] == "tiny-gpt2" and (body["layers"], body["heads"]) == (2, 4)
    assert body["points"] is None and body["placement"] is None  # no layer and head: nothing to place
    stored_tokens = client.get(f"{gpt2}/items/3/attention?layer=0&head=0").json()["tokens"]
    assert [t["text"] for t in body["tokens"]] == [t["text"] for t in stored_tokens]
    assert set(body["tokens"][0]) == {"text", "position", "special", "row", "col"}
    assert A.shape == (2, 4, len(stored_tokens), len(stored_tokens))
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, atol=1e-5)
    for layer in range(2):
        stored = np.asarray(client.get(f"{gpt2}/items/3/attention?layer={layer}").json()["attention"])
        np.testing.assert_allclose(A[layer], stored, atol=TEXT_ATTENTION_ATOL)


@pytest.mark.parametrize("dim", [2, 3])
def test_live_points_land_where_the_atlas_put_the_same_tokens(client, atlases, gpt2, dim):
    text = client.get(f"{gpt2}/items").json()["columns"]["text"][5]
    body = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": text, "layer": 1, "head": 2,
                                               "method": "pca", "dim": dim}).json()
    assert body["placement"] is None
    assert_placed_like_the_atlas(body["points"], atlases["gpt2"], 5, 1, 2, "pca", dim)
    assert body["points"]["how"] == "PCA projection" and body["points"]["rebuilt"] is False


def test_live_points_default_to_pca_2d(client, atlases, gpt2):
    text = client.get(f"{gpt2}/items").json()["columns"]["text"][2]
    body = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": text, "layer": 0,
                                               "head": 3}).json()
    assert_placed_like_the_atlas(body["points"], atlases["gpt2"], 2, 0, 3, "pca", 2)


@pytest.mark.parametrize("method,label", [("umap", "UMAP"), ("tsne", "t-SNE")])
def test_a_layout_that_cannot_place_the_input_says_why_and_places_nothing(client, atlases, method, label):
    # The tiny atlas has PCA only: these layouts are not computed; the answer says so, and
    # never places the input in PCA instead.
    body = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": "The cat sat.", "layer": 1,
                                               "head": 0, "method": method, "dim": 2}).json()
    assert body["points"] is None
    assert body["placement"]["error"] == (f"{label} 2-D of layer 1 head 0 is not computed yet: "
                                          "no layout to place points in")
    assert np.asarray(body["attention"]).shape[:2] == (2, 4)  # the attention is answered all the same


# Live text of sentences 2, 4 and 6 (72 points) in the UMAP and t-SNE 2-D layouts of L1 H2,
# distances to the same tokens' stored places in spreads (root mean square distance from the
# layout's centroid), measured median / 90th percentile: UMAP 0.069 / 0.162, t-SNE 0.0027 /
# 0.017. The live vectors are float32, the stored ones float16, so the placed points do not start
# exactly on stored ones as in tests/unit/test_place.py; the bounds are about 2.5x.
LIVE_BOUNDS = {"umap": (0.17, 0.38), "tsne": (0.007, 0.04)}


@pytest.mark.slow
@pytest.mark.xdist_group("numba")  # umap-learn's numba code compiles once per worker: tests/unit/test_place.py
def test_live_text_lands_in_umap_and_tsne_layouts_near_the_same_tokens_and_says_how_long_it_took(scratch):
    c, copy = scratch
    for method in ("umap", "tsne"):
        reduce_layout(copy, Layout(method, 2), [(1, 2)], workers=1)
    texts = c.get(f"/api/atlases/{copy.name}/items").json()["columns"]["text"]
    request = lambda method, item: {"atlas": copy.name, "text": texts[item], "layer": 1, "head": 2,
                                    "method": method, "dim": 2}
    # The app started before these layouts existed: the first placement into a UMAP layout
    # starts compiling umap-learn's code in the warm-up thread and is told to come back.
    first = c.post("/api/attention", json=request("umap", 2))
    assert first.status_code == 503 and first.headers["Retry-After"] == "5", first.text
    assert first.json()["detail"].startswith("UMAP placement is warming up (compiling for ")
    assert c.get("/readyz").json()["warming"] == ["UMAP placement"]
    warmed(c, timeout=900)
    ask = lambda method, item: c.post("/api/attention", json=request(method, item)).json()
    for method, how in (("umap", "umap-learn transform"), ("tsne", "openTSNE transform")):
        Y = stored_projection(copy, 1, 2, method, 2)
        spread = np.sqrt(((Y - Y.mean(axis=0)) ** 2).sum(axis=1).mean())
        distances = []
        for n, item in enumerate((2, 4, 6)):
            body = ask(method, item)
            points, rows = body["points"], item_rows(copy, item)
            assert body["placement"] is None and points["how"] == how and 0 < points["seconds"] < 600
            assert points["rebuilt"] == (n == 0)  # the first placement into the head rebuilds; later ones reuse
            live = np.concatenate([points["queries"], points["keys"]])
            stored = np.concatenate([Y[rows], Y[len(Y) // 2 + rows]])
            distances += list(np.linalg.norm(live - stored, axis=1) / spread)
            assert without_timing(ask(method, item)) == without_timing(body)  # the kept estimator: the same again
        median, p90 = np.median(distances), np.quantile(distances, 0.9)
        assert median <= LIVE_BOUNDS[method][0] and p90 <= LIVE_BOUNDS[method][1], (method, median, p90)


def test_a_head_whose_layout_is_not_computed_yet_says_so(scratch):
    c, copy = scratch
    (copy / "projections" / "pca-3d" / "L00H01.npy").unlink()
    ask = lambda head: c.post("/api/attention", json={"atlas": copy.name, "text": "The cat sat.", "layer": 0,
                                                      "head": head, "dim": 3}).json()
    body = ask(1)
    assert body["points"] is None
    assert body["placement"]["error"] == "PCA 3-D of layer 0 head 1 is not computed yet: no layout to place points in"
    assert ask(2)["points"]["dim"] == 3 and ask(2)["placement"] is None


@pytest.mark.slow
def test_live_image_attention_equals_the_atlas_attention_of_the_same_image(client, atlases, vit):
    data = (atlases["vit"] / "images" / "00001.png").read_bytes()
    r = client.post("/api/attention/image", data={"atlas": atlases["vit"].name, "layer": "0", "head": "3"},
                    files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny-vit" and len(body["tokens"]) == 17 and body["tokens"][5]["row"] == 1
    A = np.asarray(body["attention"])
    for layer in range(2):
        stored = np.asarray(client.get(f"{vit}/items/1/attention?layer={layer}").json()["attention"])
        np.testing.assert_allclose(A[layer], stored, atol=IMAGE_ATTENTION_ATOL)
    assert_placed_like_the_atlas(body["points"], atlases["vit"], 1, 0, 3)


def test_live_image_is_placed_in_the_layout_asked_for(client, atlases):
    data = (atlases["vit"] / "images" / "00004.png").read_bytes()
    post = lambda **form: client.post("/api/attention/image", data={"atlas": atlases["vit"].name, "layer": "1",
                                                                    "head": "2", **form},
                                      files={"file": ("x.png", data, "image/png")}).json()
    assert_placed_like_the_atlas(post(method="pca", dim="3")["points"], atlases["vit"], 4, 1, 2, "pca", 3)
    body = post(method="tsne", dim="2")
    assert body["points"] is None and "t-SNE" in body["placement"]["error"]


def test_live_image_of_any_size_is_resized_to_the_model_input(client, atlases):
    attention = lambda size: np.asarray(client.post(
        "/api/attention/image", data={"atlas": atlases["vit"].name},
        files={"file": ("x.png", png(size), "image/png")}).json()["attention"])
    A = attention((150, 90))
    assert A.shape == (2, 4, 17, 17)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, atol=1e-5)
    # one flat colour stays the same flat colour when resized: the model saw the same pixels
    np.testing.assert_allclose(A, attention((64, 64)), atol=1e-6)


@pytest.mark.parametrize("body,status,words", [
    ({"text": ""}, 422, ["empty"]),
    ({"text": "   \n"}, 422, ["empty"]),
    ({"text": "a" * 2001}, 413, ["2001 characters", "2000"]),
    ({"text": "word " * 300}, 413, ["tokens", "limit is 256"]),
    ({"text": "hi", "layer": 2}, 404, ["layer 2", "0..1"]),
    ({"text": "hi", "layer": 0, "head": 7}, 404, ["head 7", "0..3"]),
    ({}, 422, ["'text'", "required"]),
    ({"text": "hi", "layer": "one"}, 422, ["'layer'", "integer"]),
    ({"text": "hi", "layer": 0, "head": 0, "method": "lda"}, 404, ["'lda'", "pca, umap, tsne"]),
    ({"text": "hi", "layer": 0, "head": 0, "dim": 4}, 422, ["'dim'", "3"]),
])
def test_live_text_errors(client, atlases, body, status, words):
    r = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, **body})
    assert r.status_code == status, r.text
    assert all(w in r.json()["detail"] for w in words), r.json()["detail"]


def test_live_text_on_an_unknown_or_image_atlas(client, atlases):
    r = client.post("/api/attention", json={"atlas": "nope", "text": "hi"})
    assert r.status_code == 404 and atlases["gpt2"].name in r.json()["detail"]
    r = client.post("/api/attention", json={"atlas": atlases["vit"].name, "text": "hi"})
    assert r.status_code == 422 and "/api/attention/image" in r.json()["detail"]
    r = client.post("/api/attention/image", data={"atlas": atlases["gpt2"].name}, files={"file": ("x.png", png())})
    assert r.status_code == 422 and "holds text" in r.json()["detail"]


def test_live_image_errors(client, atlases, settings, tmp_path):
    name = atlases["vit"].name
    post = lambda data, **form: client.post("/api/attention/image", data={"atlas": name, **form},
                                            files={"file": ("x.png", data, "image/png")})
    for data in (b"", b"not an image", png()[:40]):
        r = post(data)
        assert r.status_code == 422 and "image" in r.json()["detail"], r.text
    r = post(png(), head="9")
    assert r.status_code == 404 and "head 9" in r.json()["detail"] and "0..3" in r.json()["detail"]
    r = post(png(), layer="0", head="0", method="lda")
    assert r.status_code == 404 and "'lda'" in r.json()["detail"]
    r = post(png(), layer="0", head="0", dim="1")
    assert r.status_code == 422 and "'dim'" in r.json()["detail"]
    r = client.post("/api/attention/image", data={"atlas": name})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    few_bytes = TestClient(create_app(settings.with_(max_upload_bytes=100)))
    r = few_bytes.post("/api/attention/image", data={"atlas": name}, files={"file": ("x.png", png())})
    assert r.status_code == 413 and "100 bytes" in r.json()["detail"]
    few_pixels = TestClient(create_app(settings.with_(max_image_pixels=64 * 64)))
    r = few_pixels.post("/api/attention/image", data={"atlas": name}, files={"file": ("x.png", png((65, 64)))})
    assert r.status_code == 413 and "65x64" in r.json()["detail"] and "4096" in r.json()["detail"]


def test_a_model_that_cannot_be_loaded_is_503_with_the_loader_message(scratch, settings, tmp_path):
    import json

    _, copy = scratch
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"]["id"] = "absent-model"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    s = with_catalog_entry(settings.with_(data_dir=copy.parent), tmp_path, "\n".join([
        'id = "absent-model"', 'label = "absent"', 'family = "gpt2"', 'modality = "text"',
        'loader = "transformers"', 'source = "qkatlas-tests/absent-model"', 'local = ["absent-model"]']))
    c = TestClient(create_app(s))
    r = c.post("/api/attention", json={"atlas": copy.name, "text": "hello"})
    assert r.status_code == 503 and "absent-model" in r.json()["detail"] and "hf download" in r.json()["detail"]
    r = TestClient(create_app(settings.with_(data_dir=copy.parent))).post(
        "/api/attention", json={"atlas": copy.name, "text": "hello"})
    assert r.status_code == 404 and "unknown model 'absent-model'" in r.json()["detail"]


def test_the_model_is_loaded_once_and_shared_by_later_requests(client, atlases):
    body = {"atlas": atlases["gpt2"].name, "text": "Once."}
    first = client.post("/api/attention", json=body).json()
    loaded = client.app.state.live._models["tiny-gpt2"]
    second = client.post("/api/attention", json={**body, "text": "Once. Twice."}).json()
    assert client.app.state.live._models["tiny-gpt2"] is loaded
    assert [t["text"] for t in first["tokens"]] == ["Once", "."]
    assert [t["text"] for t in second["tokens"]][:2] == ["Once", "."] and len(second["tokens"]) > 2
    # causal: the first tokens' attention does not depend on what follows them
    np.testing.assert_allclose(np.asarray(second["attention"])[:, :, :2, :2], first["attention"], atol=1e-6)


def without_timing(body: dict) -> dict:
    """A live answer less the fields that differ from run to run: how long placing took, and
    whether it rebuilt the layout's estimator (the first placement into a head does)."""
    return {**body, "points": body["points"] and {k: v for k, v in body["points"].items()
                                                  if k not in ("seconds", "rebuilt")}}


def test_simultaneous_live_requests_each_get_the_answer_they_get_alone(client, settings, atlases):
    gpt2, bert, vit = (atlases[name].name for name in ("gpt2", "bert", "vit"))
    texts = client.get(f"/api/atlases/{gpt2}/items").json()["columns"]["text"][:4]
    image = (atlases["vit"] / "images" / "00002.png").read_bytes()
    asks = [*({"atlas": gpt2, "text": t, "layer": i % 2, "head": i, "dim": 2 + i % 2} for i, t in enumerate(texts)),
            {"atlas": gpt2, "text": texts[0]}, {"atlas": bert, "text": texts[1], "layer": 1, "head": 1},
            {"atlas": vit, "layer": "0", "head": "2"}, {"atlas": vit, "layer": "1", "head": "0", "method": "umap"}]

    def send(http, ask: dict) -> httpx.Response:
        if ask["atlas"] == vit:
            return http.post("/api/attention/image", data=ask, files={"file": ("x.png", image, "image/png")})
        return http.post("/api/attention", json=ask)

    alone = [without_timing(send(client, ask).json()) for ask in asks]
    start = threading.Barrier(len(asks))

    def at_once(ask: dict) -> tuple[httpx.Response, float, float]:
        with httpx.Client(base_url=url, timeout=120) as http:
            start.wait()
            t0 = time.monotonic()
            r = send(http, ask)
            return r, t0, time.monotonic()

    # A fresh server that runs two models at once: once it has loaded its models, two models'
    # locks are taken at once, and one model's forward passes queue behind its lock.
    with serve_in_thread(settings.with_(live_concurrency=2)) as url, ThreadPoolExecutor(len(asks)) as pool:
        with httpx.Client(base_url=url) as http:
            while http.get("/readyz").json().get("warming"):
                time.sleep(0.05)
        answers = list(pool.map(at_once, asks))
    assert max(t0 for _, t0, _ in answers) < min(t1 for _, _, t1 in answers), "the requests did not overlap"
    for ask, (r, _, _), expected in zip(asks, answers, alone):
        assert r.status_code == 200, r.text
        assert without_timing(r.json()) == expected, ask
