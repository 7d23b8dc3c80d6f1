from pathlib import Path

from fastapi.testclient import TestClient

from qkatlas.api.app import create_app
from qkatlas.catalog import load_catalog


def test_healthz_answers_ok_and_every_answer_says_the_server_time(client):
    r = client.get("/healthz")
    assert r.json() == {"status": "ok"}
    assert float(r.headers["server-timing"].removeprefix("app;dur=")) >= 0


def test_readyz_counts_readable_atlases(client, atlases):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready" and r.json()["atlases"] >= len(atlases) and r.json()["damaged"] == 0


def test_readyz_is_503_without_any_atlas_and_ready_once_one_appears(tmp_path, settings, atlases):
    import shutil

    c = TestClient(create_app(settings.with_(data_dir=tmp_path)))
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["atlases"] == 0 and "qkatlas build" in r.json()["detail"]
    shutil.copytree(atlases["bert"], tmp_path / atlases["bert"].name)
    assert c.get("/readyz").json() == {"status": "ready", "atlases": 1, "damaged": 0}


def test_readyz_reads_the_files_and_counts_a_damaged_atlas_apart(scratch_pair):
    c, copies = scratch_pair
    assert c.get("/readyz").json() == {"status": "ready", "atlases": 2, "damaged": 0}
    tokens = copies["bert"] / "tokens.parquet"
    tokens.write_bytes(tokens.read_bytes()[:-20])  # the manifest still reads: only its table is gone
    assert c.get("/readyz").json() == {"status": "ready", "atlases": 1, "damaged": 1}
    (copies["gpt2"] / "projections" / "pca-2d" / "L00H00.npy").write_bytes(b"\x93NUMPY garbage")
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not ready"
    assert (r.json()["atlases"], r.json()["damaged"]) == (0, 2)
    for copy, file in ((copies["bert"], "tokens.parquet"), (copies["gpt2"], "projections/pca-2d/L00H00.npy")):
        assert f"atlas {copy.name!r} is damaged: {file} (" in r.json()["detail"]


def test_readyz_answers_from_memory_until_a_file_it_read_changes(scratch_pair):
    c, copies = scratch_pair
    registry = c.app.state.atlases
    c.get("/readyz")
    assert registry.states(cached_only=True) is not None  # no file read, no worker thread: the event loop answers
    m = copies["bert"] / "manifest.json"
    m.write_text(m.read_text() + " ")  # a rewrite (a build recording a layout) is read again
    assert registry.states(cached_only=True) is None
    assert c.get("/readyz").json()["atlases"] == 2
    assert registry.states(cached_only=True) is not None


def test_models_lists_the_catalog(client, settings):
    body = client.get("/api/models").json()
    assert [m["id"] for m in body] == list(load_catalog(settings))
    tiny = next(m for m in body if m["id"] == "tiny-gpt2")
    assert set(tiny) == {"id", "label", "family", "modality", "loader", "source", "random", "notes"}
    assert tiny["random"] and "random" in tiny["label"].lower()


def test_plotly_is_served_from_the_installed_package_with_a_long_cache(client):
    import plotly

    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "max-age=604800" in r.headers["cache-control"]
    assert r.content == (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


def test_front_end_is_served_at_the_root_and_api_routes_win(client):
    index = Path(__file__).parents[2] / "frontend" / "index.html"
    if index.exists():
        r = client.get("/")
        assert r.status_code == 200 and r.text == index.read_text()
    assert client.get("/api/atlases").headers["content-type"] == "application/json"


def test_openapi_documents_every_endpoint_with_examples(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/atlases/{atlas}/heads/{layer}/{head}/points", "/api/atlases/{atlas}/matrix",
                 "/api/atlases/{atlas}/heads/{layer}/{head}/neighbours", "/api/attention", "/api/attention/image",
                 "/api/atlases/{atlas}/items/{item}/patches/{position}/image", "/readyz", "/api/models"):
        assert path in paths
    assert "application/octet-stream" in paths["/api/atlases/{atlas}/matrix"]["get"]["responses"]["200"]["content"]
    assert schema["components"]["schemas"]["Neighbours"]["examples"]
    assert schema["components"]["schemas"]["AtlasSummary"]["examples"]
    assert "/openapi.json" in client.get("/docs").text


def test_unknown_api_path_is_404_not_500(client):
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_docs_page_loads_swagger_from_this_server_not_a_cdn(client):
    page = client.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = client.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
