"""Live inference through the atlas's own model: the same random-init tiny models the atlases were built with."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from qkatlas.api.app import create_app

from .conftest import with_catalog_entry
from .stored import item_rows, stored_projection


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
    assert body["model"] == "tiny-gpt2" and (body["layers"], body["heads"]) == (2, 4) and body["points"] is None
    stored_tokens = client.get(f"{gpt2}/items/3/attention?layer=0&head=0").json()["tokens"]
    assert [t["text"] for t in body["tokens"]] == [t["text"] for t in stored_tokens]
    assert set(body["tokens"][0]) == {"text", "position", "special", "row", "col"}
    assert A.shape == (2, 4, len(stored_tokens), len(stored_tokens))
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, atol=1e-5)
    for layer in range(2):
        stored = np.asarray(client.get(f"{gpt2}/items/3/attention?layer={layer}").json()["attention"])
        np.testing.assert_allclose(A[layer], stored, atol=2e-3)  # the atlas keeps float16 vectors


def test_live_points_land_where_the_atlas_put_the_same_tokens(client, atlases, gpt2):
    text = client.get(f"{gpt2}/items").json()["columns"]["text"][5]
    body = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": text, "layer": 1, "head": 2}).json()
    p = body["points"]
    assert (p["layer"], p["head"], p["method"], p["dim"]) == (1, 2, "pca", 2)
    Y = stored_projection(atlases["gpt2"], 1, 2)
    n, rows = len(Y) // 2, item_rows(atlases["gpt2"], 5)
    spread = np.abs(Y).max()
    np.testing.assert_allclose(p["queries"], Y[rows], atol=1e-2 * spread)
    np.testing.assert_allclose(p["keys"], Y[n + rows], atol=1e-2 * spread)


@pytest.mark.slow
def test_live_image_attention_equals_the_atlas_attention_of_the_same_image(client, atlases, vit):
    data = (atlases["vit"] / "images" / "00001.png").read_bytes()
    r = client.post("/api/attention/image", data={"atlas": atlases["vit"].name, "layer": "0", "head": "3"},
                    files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny-vit" and len(body["tokens"]) == 17 and body["tokens"][5]["row"] == 1
    A = np.asarray(body["attention"])
    stored = np.asarray(client.get(f"{vit}/items/1/attention?layer=1").json()["attention"])
    np.testing.assert_allclose(A[1], stored, atol=2e-3)
    Y = stored_projection(atlases["vit"], 0, 3)
    rows = item_rows(atlases["vit"], 1)
    np.testing.assert_allclose(body["points"]["queries"], Y[rows], atol=1e-2 * np.abs(Y).max())


def test_live_image_of_any_size_is_resized_to_the_model_input(client, atlases):
    r = client.post("/api/attention/image", data={"atlas": atlases["vit"].name},
                    files={"file": ("x.png", png((150, 90)), "image/png")})
    assert r.status_code == 200 and np.asarray(r.json()["attention"]).shape == (2, 4, 17, 17)


@pytest.mark.parametrize("body,status,words", [
    ({"text": ""}, 422, ["empty"]),
    ({"text": "   \n"}, 422, ["empty"]),
    ({"text": "a" * 2001}, 413, ["2001 characters", "2000"]),
    ({"text": "word " * 300}, 413, ["tokens", "limit is 256"]),
    ({"text": "hi", "layer": 2}, 404, ["layer 2", "0..1"]),
    ({"text": "hi", "layer": 0, "head": 7}, 404, ["head 7", "0..3"]),
    ({}, 422, ["'text'", "required"]),
    ({"text": "hi", "layer": "one"}, 422, ["'layer'", "integer"]),
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
    assert post(png(), head="9").status_code == 404
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
    assert client.post("/api/attention", json=body).status_code == 200
    loaded = client.app.state.live._models["tiny-gpt2"]
    assert client.post("/api/attention", json={**body, "text": "Twice."}).status_code == 200
    assert client.app.state.live._models["tiny-gpt2"] is loaded
