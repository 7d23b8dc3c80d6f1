"""The URL holds the whole view (README): every field of the page state (js/state.js) is
written to the URL and read back from it after a reload, and the page shows what it says."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from .builds import layout_heads, write_heads
from .pages import open_view, screenshot, wait_drawn

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


def state_defaults(page) -> dict:
    """Each field of the page's state schema with its default value."""
    return page.evaluate("Object.fromEntries(Object.entries(qkatlas.store.fields).map(([name, f]) => [name, f[1]]))")


def test_every_state_field_survives_a_reload(page, scratch_server):
    url, atlas = scratch_server
    for dim in (2, 3):  # a second method, so that the method too can differ from its default
        write_heads(atlas, layout_heads(atlas, f"pca-{dim}d"), f"umap-{dim}d")
    open_view(page, url, "matrix", atlas=atlas.name)
    defaults = state_defaults(page)
    cols = page.evaluate(f"fetch('api/atlases/{atlas.name}/tokens?format=json').then(r => r.json())")["columns"]
    item = 3
    token = cols["item"].index(item) + 1  # the second token of sentence 3
    chosen = {
        "atlas": atlas.name, "view": "head", "method": "umap", "dim": 3, "layer": 1, "head": 2,
        "token": token, "side": "key", "item": item, "color": "position", "show": "key", "mode": "all",
        "search": "bank", "text": "The river bank flooded.",
        # the heads by their statistics and the comparison (each shown by test_stats_views.py)
        "tint": "entropy", "sort": "-positional", "kind": "sink", "where": "entropy>=0.5", "mapcolor": "kind",
        "size": "first", "b": "another-atlas", "blayer": 1, "bhead": 0, "panes": "head",
    }
    by_ui = {"by": "joint", "k": 5}  # the neighbour settings, picked in the neighbours panel
    assert set(chosen) | set(by_ui) == set(defaults), "a state field this test does not round-trip"
    assert all(value != defaults[name] for name, value in {**chosen, **by_ui}.items())

    page.evaluate("state => qkatlas.store.set(state)", chosen)
    wait_drawn(page, "head")
    page.locator("ol.neighbours li.neighbour").first.wait_for()
    page.locator(".selection select.neighbours-by").select_option("joint")
    page.locator(".selection select.neighbours-k").select_option("5")
    page.wait_for_function("document.querySelectorAll('ol.neighbours li.neighbour').length === 5")
    query = parse_qs(urlparse(page.url).query)
    assert {name: query[name] for name in defaults} == {name: [str(v)] for name, v in {**chosen, **by_ui}.items()}

    page.reload()
    wait_drawn(page, "head")
    assert page.evaluate("qkatlas.store.get()") == {**chosen, **by_ui}
    # ...and the page shows each of them
    assert page.locator("#atlas-picker").input_value() == atlas.name
    assert page.locator("#view-tabs .tab.active").get_attribute("data-view") == "head"
    assert page.locator("#method-picker .active").get_attribute("data-method") == "umap"
    assert page.locator("#dim-picker .active").inner_text() == "3-D"
    assert page.evaluate("document.querySelector('.head-plot')._fullData[0].type") == "scatter3d"
    assert page.locator(".view-head .toolbar .title").inner_text() == "L1 H2"
    assert page.locator(".side-head .color-select").input_value() == "position"
    assert not page.locator(".view-head .check.query input").is_checked()
    assert page.locator(".view-head .check.key input").is_checked()
    assert page.locator("#search").input_value() == "bank"
    rows = page.locator("ol.neighbours li.neighbour")
    rows.first.wait_for()
    assert page.locator(".selected-token .side-badge").inner_text() == "K"
    assert page.locator(".selected-text").inner_text() == cols["text"][token].strip()
    assert page.locator(".selection select.neighbours-by").input_value() == "joint"
    assert page.locator(".selection select.neighbours-k").input_value() == "5"
    expected = page.evaluate(f"fetch('api/atlases/{atlas.name}/heads/1/2/neighbours?token={token}&side=key&k=5"
                             f"&by=joint&method=umap&dim=3').then(r => r.json())")["neighbours"]
    assert [int(t) for t in rows.evaluate_all("els => els.map(e => e.dataset.token)")] == [n["token"] for n in expected]
    screenshot(page, "url-state-head")

    page.locator("#view-tabs [data-view=sentence]").click()
    wait_drawn(page, "sentence")
    assert page.locator(".view-sentence .toolbar input.num").input_value() == str(item)
    assert page.locator(".view-sentence [data-mode=all]").get_attribute("class").split().count("active") == 1
    page.locator("#view-tabs [data-view=live]").click()
    assert page.locator(".live-form textarea").input_value() == chosen["text"]
    # UMAP 3-D on screen: the first placement into UMAP in this process waits for umap-learn's
    # numba code to compile (the server answers 503 meanwhile and the page asks again)
    wait_drawn(page, "live", timeout=600_000)
    heads = page.evaluate(f"fetch('api/atlases/{atlas.name}').then(r => r.json())")["heads"]
    assert page.locator(".live-right canvas.heatmap").count() == heads  # mode=all: every head of the layer
    answer = httpx.post(f"{url}/api/attention", timeout=60, json={
        "atlas": atlas.name, "text": chosen["text"], "layer": 1, "head": 2, "method": "umap", "dim": 3}).json()
    if answer["points"] is None:  # the layout on screen cannot place it: the page says why
        assert page.locator(".placement-error .error-detail").inner_text() == answer["placement"]["error"]
    else:
        assert page.locator(".live-plot").get_attribute("data-overlay") == str(2 * len(answer["tokens"]))
        assert page.locator(".view-live .toolbar .placed").inner_text().startswith("Placed in UMAP 3-D")
