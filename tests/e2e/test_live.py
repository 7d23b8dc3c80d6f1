"""Your text, your image: the model runs on the input, which is placed in the layout on screen
(the method and dimension of the header) as the API places it, drawn among the corpus points
with how long the placement took; a layout that cannot place new points says why and draws
nothing in its place."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pytest

from qkatlas.layout import Layout
from qkatlas.reduce.run import reduce_layout

from .pages import open_view, screenshot, wait_drawn
from .pixels import apart, pixels_at, plot_pixels, screen_rgb, theme

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

TEXT = "The bank raised rates after the river flooded."
LIVE_TIMEOUT = 60_000  # the first run loads the model


def run_text(page, server: str, atlas: str, timeout: float = LIVE_TIMEOUT, **state) -> None:
    open_view(page, server, atlas=atlas, view="live", **state)
    page.locator(".live-form textarea").fill(TEXT)
    page.keyboard.press("Enter")
    wait_drawn(page, "live", timeout=timeout)


def overlay(page, name: str) -> np.ndarray:
    """The coordinates of the overlay `name` ("your queries") as drawn: the markers of the 2-D
    plot's SVG layer, or plotly's trace in 3-D."""
    markers = page.locator(f".live-plot svg.plot-overlay g.extra[data-name='{name}'] .marker")
    if markers.count():
        return np.array(markers.evaluate_all("els => els.map(e => [Number(e.dataset.x), Number(e.dataset.y)])"))
    trace = page.evaluate(f"document.querySelector('.live-plot')._fullData.find(t => t.name === {name!r})")
    axes = [trace[a] for a in ("x", "y", "z") if a in trace]
    return np.array([[float(v) for v in axis] for axis in axes]).T


def assert_placed_line(page, points: dict, label: str) -> None:
    text = page.locator(".view-live .toolbar .placed").inner_text()
    assert re.fullmatch(rf"Placed in {label} by {re.escape(points['how'])} in [0-9.]+ m?s", text)


def test_your_text_is_placed_in_the_2d_layout_on_screen_and_drawn_with_its_attention(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    res = api.post("/api/attention", json={"atlas": atlas, "text": TEXT, "layer": 1, "head": 2, "method": "pca", "dim": 2}).json()
    points = res["points"]
    assert (points["method"], points["dim"]) == ("pca", 2)
    n = len(res["tokens"])
    run_text(page, server, atlas, layer=1, head=2)
    assert parse_qs(urlparse(page.url).query)["text"] == [TEXT]
    assert page.locator(".live-plot").get_attribute("data-overlay") == str(2 * n)
    assert overlay(page, "your queries") == pytest.approx(np.array(points["queries"]), abs=1e-5)
    assert overlay(page, "your keys") == pytest.approx(np.array(points["keys"]), abs=1e-5)
    assert_placed_line(page, points, "PCA 2-D")
    # the placed points are on screen in the query and key colours
    colours = theme(page)
    plot = page.locator(".live-plot")
    img = screen_rgb(plot)
    queries, keys = plot_pixels(page, plot, points["queries"]), plot_pixels(page, plot, points["keys"])
    for xy, others, colour in ((queries, keys, colours["Q"]), (keys, queries, colours["K"])):
        alone = apart(xy, others, 12)
        assert alone.sum() >= 2
        assert np.abs(pixels_at(img, xy[alone]) - colour).max() <= 6
    # its attention, with the causal mask named
    assert page.locator(".live-right svg.attn-lines text.tok-q").count() == n
    assert "causal" in page.locator(".live-right .causal-note").inner_text().lower()
    screenshot(page, "live-text")


def test_your_text_is_placed_in_the_3d_layout_when_3d_is_on_screen(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    res = api.post("/api/attention", json={"atlas": atlas, "text": TEXT, "layer": 0, "head": 1, "method": "pca", "dim": 3}).json()
    points = res["points"]
    assert (points["method"], points["dim"]) == ("pca", 3)
    run_text(page, server, atlas, layer=0, head=1, dim=3)
    types = page.evaluate("document.querySelector('.live-plot')._fullData.map(t => t.type)")
    assert set(types) == {"scatter3d"}
    assert overlay(page, "your queries") == pytest.approx(np.array(points["queries"]), abs=1e-5)
    assert overlay(page, "your keys") == pytest.approx(np.array(points["keys"]), abs=1e-5)
    assert_placed_line(page, points, "PCA 3-D")
    screenshot(page, "live-text-3d")
    # another layout on screen: the model runs again, and the input is placed there
    runs = int(page.evaluate("document.body.dataset.liveDrawn"))
    page.locator("#dim-picker [data-dim='2']").click()
    wait_drawn(page, "live", after=runs, timeout=LIVE_TIMEOUT)
    # 2-D: the corpus on the WebGL canvas (plotly's 3-D figure gone), the input in the SVG layer over it
    assert page.locator(".live-plot canvas.points").is_visible()
    assert page.locator(".live-plot .js-plotly-plot, .live-plot .plot-container").count() == 0
    assert len(overlay(page, "your queries")) == len(points["queries"])
    assert page.locator(".view-live .toolbar .placed").inner_text().startswith("Placed in PCA 2-D")


def test_a_layout_that_cannot_place_new_points_says_why_and_draws_no_other(page, scratch_server):
    """Every method places points now; a layout not computed for the head cannot."""
    url, atlas = scratch_server
    body = {"atlas": atlas.name, "text": TEXT, "layer": 1, "head": 0, "method": "tsne", "dim": 2}
    res = httpx.post(f"{url}/api/attention", json=body, timeout=60).json()
    assert res["points"] is None
    why = res["placement"]["error"]
    assert why
    run_text(page, url, atlas.name, layer=1, head=0, method="tsne")
    box = page.locator(".view-live .placement-error")
    assert box.locator(".error-title").inner_text() == "t-SNE 2-D cannot place your text"
    assert box.locator(".error-detail").inner_text() == why
    assert not page.locator(".live-plot").is_visible()
    assert page.locator(".view-live .toolbar .placed").count() == 0
    # its attention is still there
    assert page.locator(".live-right svg.attn-lines text.tok-q").count() == len(res["tokens"])
    screenshot(page, "live-cannot-place")


def test_your_image_is_placed_in_the_layout_on_screen(page, server, api, e2e_atlases, tmp_path):
    atlas = e2e_atlases["image"]
    image = tmp_path / "photo.png"
    image.write_bytes(api.get(f"/api/atlases/{atlas}/items/2/image").content)
    form = {"atlas": atlas, "layer": "1", "head": "1", "method": "pca", "dim": "3"}
    res = api.post("/api/attention/image", data=form, files={"file": ("photo.png", image.read_bytes(), "image/png")}).json()
    points = res["points"]
    assert (points["method"], points["dim"]) == ("pca", 3)
    open_view(page, server, atlas=atlas, view="live", layer=1, head=1, dim=3)
    page.locator(".live-form input[type=file]").set_input_files(str(image))
    wait_drawn(page, "live", timeout=LIVE_TIMEOUT)
    assert page.locator(".live-plot").get_attribute("data-overlay") == str(2 * len(res["tokens"]))
    assert overlay(page, "your queries") == pytest.approx(np.array(points["queries"]), abs=1e-4)
    assert_placed_line(page, points, "PCA 3-D")
    assert page.locator(".live-right canvas.patch-overlay").count() == 1
    screenshot(page, "live-image-3d")



@pytest.mark.slow  # compiles umap-learn's numba code in this process, once
def test_your_text_waits_for_the_umap_placement_to_warm_up_and_is_then_placed_in_umap(page, scratch_server):
    url, atlas = scratch_server
    reduce_layout(atlas, Layout("umap", 2), [(1, 0)], workers=1)
    run_text(page, url, atlas.name, timeout=600_000, layer=1, head=0, method="umap")
    # the server answered 503 "UMAP placement is warming up" first; the page said so and asked again
    assert int(page.locator(".view-live").get_attribute("data-waits")) >= 1
    res = httpx.post(f"{url}/api/attention", json={"atlas": atlas.name, "text": TEXT, "layer": 1, "head": 0,
                                                   "method": "umap", "dim": 2}, timeout=60).json()
    assert_placed_line(page, res["points"], "UMAP 2-D")
    assert overlay(page, "your queries") == pytest.approx(np.array(res["points"]["queries"]), abs=1e-4)
    screenshot(page, "live-text-umap")
