"""Admission control: bodies bounded before they are read, live inference behind a bounded queue
per model (429 beyond it, 503 while its model loads) that never holds up health checks, and
live answers sized by what the view needs."""

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from fastapi.testclient import TestClient

from qkatlas.api import limits
from qkatlas.api.app import create_app
from qkatlas.serve import serve_in_thread

from .conftest import warmed
from .raw import chunked, post_streaming

JSON_LIMIT = "65536 bytes (max_json_bytes)"

# ---------------------------------------------------------------------------------------
# request bodies


def test_a_declared_300_mb_json_body_is_413_before_any_of_it_is_read(server):
    status, _, body, sent, seconds = post_streaming(
        server, "/api/attention", {"Content-Type": "application/json", "Content-Length": str(300 << 20)},
        [b'{"atlas": "x", "text": "'])
    print(f"413 after {seconds * 1000:.1f} ms, {sent} bytes of 300 MB sent")
    assert status == 413 and JSON_LIMIT in json.loads(body)["detail"]
    assert str(300 << 20) in json.loads(body)["detail"]


def test_a_declared_300_mb_upload_is_413_before_any_of_it_is_read(server, atlases):
    status, _, body, _, _ = post_streaming(
        server, "/api/attention/image",
        {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(300 << 20)}, [b"--b\r\n"])
    assert status == 413 and "max_upload_bytes" in json.loads(body)["detail"]


def test_a_chunked_body_without_length_is_413_as_soon_as_it_passes_the_limit(server, atlases):
    endless = b'{"atlas": "x", "text": "' + b"a" * (4 << 20) + b'"}'
    status, _, body, sent, _ = post_streaming(
        server, "/api/attention", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked(endless, 8192))
    assert status == 413 and "larger than the limit of " + JSON_LIMIT in json.loads(body)["detail"]
    assert sent < len(endless) / 4  # the client was stopped long before the end


def test_a_body_that_stops_arriving_is_408(server, monkeypatch):
    monkeypatch.setattr(limits, "BODY_IDLE_S", 0.3)
    status, _, body, _, _ = post_streaming(
        server, "/api/attention", {"Content-Type": "application/json", "Content-Length": "100"}, [b'{"at'])
    assert status == 408 and "did not arrive in time" in json.loads(body)["detail"]


def test_a_body_within_the_limit_reaches_the_route_whole(client, atlases):
    text = "The cat sat. " * 40  # 520 characters, sent as a chunked body
    r = client.post("/api/attention", content=iter([json.dumps({"atlas": atlases["gpt2"].name}).encode()[:-1],
                                                    f', "text": {json.dumps(text)}}}'.encode()]),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------
# the live queue


def test_a_flood_of_live_requests_beyond_the_queue_is_429_with_retry_after_while_health_answers(settings, atlases):
    name = atlases["gpt2"].name
    text = "The quick brown fox jumps over the lazy dog. " * 8
    clients = 40
    health: list[tuple[int, float]] = []
    stop = threading.Event()
    start = threading.Barrier(clients)

    def probe(url: str):
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                health.append((http.get("/healthz").status_code, time.perf_counter() - t0))
                time.sleep(0.005)

    def ask(url: str) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=120) as http:
            start.wait()
            return http.post("/api/attention", json={"atlas": name, "text": text, "layer": 0, "head": 1,
                                                     "scope": "layer"})

    with serve_in_thread(settings.with_(live_queue=2, live_concurrency=1)) as url:
        with httpx.Client(base_url=url) as http:
            while http.get("/readyz").json().get("warming"):
                time.sleep(0.05)
        prober = threading.Thread(target=probe, args=(url,))
        prober.start()
        try:
            with ThreadPoolExecutor(clients) as pool:
                answers = list(pool.map(ask, [url] * clients))
        finally:
            stop.set()
            prober.join()
    statuses = Counter(r.status_code for r in answers)
    ms = np.array([s for _, s in health]) * 1000
    print(f"live: {dict(statuses)}; /healthz during the flood: {len(ms)} requests, "
          f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms")
    assert set(statuses) <= {200, 429} and statuses[429] > 0 and statuses[200] > 0
    busy = [r for r in answers if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 and "live_queue=2" in r.json()["detail"] for r in busy)
    assert health and all(code == 200 for code, _ in health)


def test_a_live_request_while_its_model_loads_is_503_with_retry_after(settings, atlases):
    app = create_app(settings)
    loading = app.state.live._loading  # held by a load in progress: the warm-up waits behind it
    ask = {"atlas": atlases["gpt2"].name, "text": "Hello there."}
    loading.acquire()
    try:
        with TestClient(app) as c:
            r = c.post("/api/attention", json=ask)
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            assert "'tiny-gpt2' is warming up" in r.json()["detail"]
            assert "tiny-gpt2" in c.get("/readyz").json()["warming"]
            assert c.get("/healthz").status_code == 200
            loading.release()
            assert warmed(c).post("/api/attention", json=ask).status_code == 200
    finally:
        if loading.locked():
            loading.release()


# ---------------------------------------------------------------------------------------
# live answers sized by what the view needs


def live(client, atlas: str, **body) -> httpx.Response:
    return client.post("/api/attention", json={"atlas": atlas, **body})


def test_scope_layer_and_head_answer_their_part_of_every_layers_attention(client, atlases):
    name = atlases["gpt2"].name
    every = live(client, name, text="The cat sat on the mat.").json()
    layer = live(client, name, text="The cat sat on the mat.", layer=1, head=2, scope="layer").json()
    head = live(client, name, text="The cat sat on the mat.", layer=1, head=2, scope="head").json()
    assert (every["scope"], layer["scope"], head["scope"]) == ("all", "layer", "head")
    assert (layer["layer"], layer["head"], layer["layers"], layer["heads"]) == (1, 2, 2, 4)
    A = np.asarray(every["attention"])
    assert np.asarray(layer["attention"]).shape == A.shape[1:]
    np.testing.assert_array_equal(layer["attention"], A[1])
    np.testing.assert_array_equal(head["attention"], A[1, 2])
    placed = [{k: v for k, v in body["points"].items() if k != "seconds"} for body in (layer, head)]
    assert placed[0] == placed[1] and placed[0]["layer"] == 1  # placed all the same


def test_a_scope_without_its_layer_or_head_is_422(client, atlases):
    r = live(client, atlases["gpt2"].name, text="Hi.", scope="layer")
    assert r.status_code == 422 and "scope 'layer'" in r.json()["detail"] and "layer" in r.json()["detail"]
    r = live(client, atlases["gpt2"].name, text="Hi.", layer=0, scope="head")
    assert r.status_code == 422 and "layer and head" in r.json()["detail"]
    r = live(client, atlases["gpt2"].name, text="Hi.", scope="model")
    assert r.status_code == 422 and "'scope'" in r.json()["detail"]


def test_every_layer_of_a_long_text_is_refused_as_json_and_answered_as_float16(client, atlases):
    name, text = atlases["gpt2"].name, " ".join(["word"] * 250)  # 2 layers x 4 heads x 250² values
    r = live(client, name, text=text)
    assert r.status_code == 422
    assert all(w in r.json()["detail"] for w in ("2 x 4 x 250² = 500000 values", "scope 'layer'", "'binary'"))
    r = live(client, name, text=text, format="binary")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    m = int(r.headers["x-json-bytes"])
    fields = json.loads(r.content[:m])
    A = np.frombuffer(r.content[m:], "<f2").reshape([int(d) for d in r.headers["x-shape"].split(",")])
    assert A.shape == (2, 4, 250, 250) and "attention" not in fields and len(fields["tokens"]) == 250
    one_layer = live(client, name, text=text, layer=1, scope="layer").json()
    np.testing.assert_allclose(A[1], one_layer["attention"], atol=5e-4)  # float16: 11 bits of mantissa
