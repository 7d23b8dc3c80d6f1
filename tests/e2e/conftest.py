"""E2E fixtures: the real app under uvicorn on loopback over tiny real atlases, and headless
Chromium driven by Playwright (the system Chromium; Playwright never downloads a browser)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import httpx
import pytest

from qkatlas.manifest import read_manifest
from qkatlas.serve import serve_in_thread
from qkatlas.store import AtlasWriter

from ..conftest import CHROMIUM

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
BENCH = Path(__file__).parents[2] / "bench"


def running_server(settings):
    return serve_in_thread(settings, lifespan="off")


def synthetic_atlas(folder: Path, **size) -> Path:
    """bench/synthetic.py's builder: the one synthetic atlas of the benchmarks and tests."""
    spec = importlib.util.spec_from_file_location("bench_synthetic", BENCH / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_atlas(folder, **size)


@pytest.fixture(scope="session")
def e2e_atlases(tiny_text_atlas, tiny_bert_atlas, tiny_image_atlas) -> dict[str, str]:
    """Causal text (tiny GPT-2), bidirectional text (tiny BERT) and images (tiny ViT)."""
    return {"text": tiny_text_atlas.name, "bert": tiny_bert_atlas.name, "image": tiny_image_atlas.name}


@pytest.fixture(scope="session")
def server(settings, e2e_atlases) -> str:
    with running_server(settings) as url:
        yield url


@pytest.fixture(scope="session")
def api(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser_context(browser):
    """One context for the session: its HTTP and code caches spare each test re-compiling plotly.js."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    """A fresh page; any uncaught JavaScript error fails the test."""
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def gqa_server(settings, tmp_path_factory):
    """A server over a synthetic atlas of SmolLM2's shape: 30 layers of 9 query heads that
    share 3 key/value heads, causal. Yields its URL and the atlas id."""
    data = tmp_path_factory.mktemp("gqa")
    atlas = synthetic_atlas(data / "synthetic-30x9", layers=30, heads=9, tokens=600)
    AtlasWriter(atlas).write_manifest(read_manifest(atlas).model_copy(update={"kv_heads": 3}))
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, atlas.name


@pytest.fixture(scope="session")
def big_head_server(settings, tmp_path_factory):
    """A server over a synthetic atlas of one head on 250 000 tokens: half a million points in
    its head view. Yields its URL and the atlas id."""
    data = tmp_path_factory.mktemp("big")
    atlas = synthetic_atlas(data / "synthetic-1x1x250000", layers=1, heads=1, tokens=250_000, head_dim=8)
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, atlas.name


@pytest.fixture
def empty_server(settings, tmp_path):
    """A server over an empty data dir (no atlas yet): yields its URL and the data dir."""
    data = tmp_path / "data"
    data.mkdir()
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, data


@pytest.fixture
def scratch_server(settings, tiny_text_atlas, tmp_path):
    """A server over a data dir holding a copy of the tiny text atlas that a test may change."""
    data = tmp_path / "data"
    copy = data / tiny_text_atlas.name
    shutil.copytree(tiny_text_atlas, copy)
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, copy
