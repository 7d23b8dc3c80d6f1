"""The real server: uvicorn on a loopback port, called over HTTP with httpx."""

import gzip

import httpx
import numpy as np

from .stored import stored_projection


def test_real_server_serves_health_atlases_and_binary_points(server, atlases):
    with httpx.Client(base_url=server, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert atlases["gpt2"].name in [a["id"] for a in http.get("/api/atlases").json()]
        r = http.get(f"/api/atlases/{atlases['gpt2'].name}/heads/1/1/points")
        assert r.status_code == 200 and "content-encoding" not in r.headers  # float32 is sent as is
        np.testing.assert_array_equal(np.frombuffer(r.content, "<f4").reshape(-1, 2),
                                      stored_projection(atlases["gpt2"], 1, 1))
        assert http.get(r.url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_real_server_gzips_json_tables_when_asked(server, atlases):
    url = f"{server}/api/atlases/{atlases['gpt2'].name}/tokens"
    with httpx.Client(timeout=10) as http:
        r = http.get(url, headers={"Accept-Encoding": "identity"})
        raw = http.send(http.build_request("GET", url, headers={"Accept-Encoding": "gzip"}), stream=True)
        compressed = b"".join(raw.iter_raw())
    assert raw.headers["content-encoding"] == "gzip" and len(compressed) < len(r.content) / 3
    assert gzip.decompress(compressed) == r.content


def test_real_server_errors_are_json_4xx(server):
    with httpx.Client(base_url=server, timeout=10) as http:
        r = http.get("/api/atlases/nope/heads/0/0/points")
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        assert "unknown atlas 'nope'" in r.json()["detail"]
