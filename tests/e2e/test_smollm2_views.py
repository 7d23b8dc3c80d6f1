"""A real causal decoder in the browser: SmolLM2 (30 layers × 9 query heads sharing 3 key/value
heads) in the matrix, head and sentence views."""

from pathlib import Path

import pytest

from qkatlas.build import build

from ..conftest import SHARED_MODELS
from .conftest import running_server
from .pages import open_view, screenshot, wait_drawn

GGUF_DIR = SHARED_MODELS / "smollm2-135m-instruct"
CACHE = Path(__file__).parents[2] / ".cache" / "qkatlas-tests"  # the de-quantised model, reused across runs

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not GGUF_DIR.is_dir(), reason=f"{GGUF_DIR} is absent")]


@pytest.fixture(scope="module")
def smollm2_server(settings, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QKATLAS_CACHE_DIR", str(CACHE))
        data = tmp_path_factory.mktemp("smollm2")
        atlas = build(settings.with_(data_dir=data), "smollm2", "default", limit=12, methods=["pca"], dims=[2])
        with running_server(settings.with_(data_dir=data)) as url:
            yield url, atlas.name


def test_smollm2_matrix_shows_every_head_grouped_by_key_value_head(page, smollm2_server):
    url, atlas = smollm2_server
    open_view(page, url, "matrix", atlas=atlas)
    assert page.locator(".view-matrix .cell").count() == 30 * 9
    assert "sharing 3 key/value heads" in page.locator(".view-matrix .toolbar .title").inner_text()
    screenshot(page, "smollm2-matrix")


def test_smollm2_head_view_names_the_heads_sharing_its_keys(page, smollm2_server):
    url, atlas = smollm2_server
    open_view(page, url, "head", atlas=atlas, view="head", layer=12, head=4)
    assert page.locator(".view-head .toolbar .kv-share").inner_text() == "shares keys with H3, H5 (KV head 1 of 3)"
    screenshot(page, "smollm2-head")


def test_smollm2_sentence_view_is_causal(page, smollm2_server, api):
    url, atlas = smollm2_server
    cols = api.get(f"{url}/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    token = 5
    item, position = cols["item"][token], cols["position"][token]
    open_view(page, url, "sentence", atlas=atlas, view="sentence", layer=3, head=2, item=item)
    attention = api.get(f"{url}/api/atlases/{atlas}/items/{item}/attention", params={"layer": 3, "head": 2}).json()
    row = attention["attention"][position]
    assert all(w == 0 for w in row[position + 1:]) and abs(sum(row) - 1) < 1e-6
    page.locator(f"svg.attn-lines text.tok-q[data-position='{position}']").hover()
    assert page.locator("svg.attn-lines g.lines line").count() == sum(w > 0.002 for w in row)
    assert "causal" in page.locator(".view-sentence").inner_text().lower()
    screenshot(page, "smollm2-sentence")
