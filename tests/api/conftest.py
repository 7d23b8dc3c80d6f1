"""API fixtures: the real app over the real tiny atlases, atlas copies to change, a real server on loopback."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qkatlas.api.app import create_app
from qkatlas.build import build
from qkatlas.serve import serve_in_thread
from qkatlas.settings import Settings


@pytest.fixture(scope="session")
def settings(settings) -> Settings:
    """The session's settings, answering TestClient's Host header ("testserver") too."""
    return settings.with_(allowed_hosts="testserver")


def warmed(client: TestClient, timeout: float = 120) -> TestClient:
    """`client` once its app has loaded the models of its atlases (/readyz names none warming)."""
    deadline = time.monotonic() + timeout
    while client.get("/readyz").json().get("warming"):
        assert time.monotonic() < deadline, "the live models did not load"
        time.sleep(0.05)
    return client


@pytest.fixture(scope="session")
def atlases(tiny_text_atlas, tiny_bert_atlas, tiny_image_atlas) -> dict[str, Path]:
    """The three tiny atlases, built once into the session's data dir."""
    return {"gpt2": tiny_text_atlas, "bert": tiny_bert_atlas, "vit": tiny_image_atlas}


@pytest.fixture(scope="session")
def client(settings, atlases) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield warmed(c)


@pytest.fixture(scope="session")
def gpt2(atlases) -> str:
    return f"/api/atlases/{atlases['gpt2'].name}"


@pytest.fixture(scope="session")
def vit(atlases) -> str:
    return f"/api/atlases/{atlases['vit'].name}"


@pytest.fixture(scope="session")
def grouped(settings, tmp_path_factory) -> tuple[TestClient, Path]:
    """A client on its own data dir holding tiny-llama (random init, grouped-query attention:
    4 query heads share 2 key/value heads) on 12 default sentences, PCA 2-D."""
    local = settings.with_(data_dir=tmp_path_factory.mktemp("grouped"))
    path = build(local, "tiny-llama", "default", limit=12, methods=["pca"], dims=[2])
    manifest = json.loads((path / "manifest.json").read_text())
    if manifest.get("kv_heads") is None:
        # Builds that predate the manifest's kv_heads field leave it out: write what the
        # catalog's model config says (num_key_value_heads = 2).
        (path / "manifest.json").write_text(json.dumps({**manifest, "kv_heads": 2}))
    with TestClient(create_app(local)) as c:
        yield warmed(c), path


@pytest.fixture
def scratch(tmp_path, settings, atlases):
    """A fresh data dir with a copy of the tiny GPT-2 atlas that a test may change, and a client on it."""
    data = tmp_path / "data"
    copy = data / atlases["gpt2"].name
    shutil.copytree(atlases["gpt2"], copy)
    with TestClient(create_app(settings.with_(data_dir=data))) as c:
        yield warmed(c), copy


@pytest.fixture
def scratch_pair(tmp_path, settings, atlases):
    """A fresh data dir with copies of the tiny GPT-2 and BERT atlases that a test may change, and a
    client on it: (client, {"gpt2": copy, "bert": copy})."""
    data = tmp_path / "data"
    copies = {which: data / atlases[which].name for which in ("gpt2", "bert")}
    for which, copy in copies.items():
        shutil.copytree(atlases[which], copy)
    with TestClient(create_app(settings.with_(data_dir=data))) as c:
        yield warmed(c), copies


@pytest.fixture(scope="session")
def server(settings, atlases) -> str:
    with serve_in_thread(settings) as url:
        yield url


def with_catalog_entry(settings: Settings, tmp_path: Path, toml: str) -> Settings:
    """Settings whose catalog is the project's plus one extra model file."""
    catalog = tmp_path / "models"
    shutil.copytree(settings.catalog_dir, catalog)
    (catalog / "extra.toml").write_text(toml)
    return settings.with_(catalog_dir=catalog)
