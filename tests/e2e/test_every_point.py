"""Every point on screen: the matrix draws every point of every head on one WebGL canvas,
zooms at the pointer and pans, and names the point under the pointer; a head of half a
million tokens draws its million points and names the one under the pointer. (How fast is
bench/frontend.py's question: no test here asserts a time.)"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from .pages import open_view, screenshot, wait_drawn
from .pixels import matrix_cells, warm_and_cool

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
FRONTEND = Path(__file__).parents[2] / "frontend"


def matrix_cell_points(page, layer: int, head: int) -> dict[str, np.ndarray]:
    """One cell's points where the matrix draws them (cell units) with their tokens, by side."""
    d = page.evaluate("""([layer, head]) => {
        const d = qkatlas.current.placed(), c = layer * d.heads + head;
        const nq = d.qx.length / (d.layers * d.heads), nk = d.kx.length / (d.layers * d.heads);
        const part = (a, n) => Array.from(a.slice(c * n, (c + 1) * n));
        return {q: [part(d.qx, nq), part(d.qy, nq), part(d.qTok, nq)], k: [part(d.kx, nk), part(d.ky, nk), part(d.kTok, nk)]};
    }""", [layer, head])
    return {side: np.array(v).T for side, v in d.items()}


def test_matrix_draws_every_point_of_every_head(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    summary = api.get(f"/api/atlases/{atlas}").json()
    layers, heads, tokens = summary["layers"], summary["heads"], summary["tokens"]
    open_view(page, server, "matrix", atlas=atlas)
    every = layers * heads * 2 * tokens  # each token's query and key, in every head
    view = page.locator(".view-matrix")
    assert view.get_attribute("data-points") == str(every)
    assert view.get_attribute("data-drawn") == str(every)  # the frame on screen drew them all
    assert page.locator(".side-matrix").inner_text().count(f"Every point of every head: {every:,}") == 1
    # each head's points, fitted into its own cell: every token of both sides, inside the cell
    for layer, head in ((0, 0), (layers - 1, heads - 1)):
        pts = matrix_cell_points(page, layer, head)
        for side in ("q", "k"):
            assert sorted(pts[side][:, 2].astype(int)) == list(range(tokens))
            x, y = pts[side][:, 0], pts[side][:, 1]
            assert np.all((x > head) & (x < head + 1) & (y > layer) & (y < layer + 1))
    # and drawn there: queries (warm) and keys (cool) in every cell
    cells = matrix_cells(page)
    assert sorted(cells) == [(layer, head) for layer in range(layers) for head in range(heads)]
    assert all(min(warm_and_cool(pixels)) > 20 for pixels in cells.values())


def test_hovering_a_point_in_the_matrix_names_its_token_and_its_head(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    cols = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    open_view(page, server, "matrix", atlas=atlas)
    layer, head = 1, 2
    pts = matrix_cell_points(page, layer, head)
    everything = np.r_[pts["q"][:, :2], pts["k"][:, :2]]
    d = np.linalg.norm(pts["q"][:, None, :2] - everything[None, :, :], axis=-1)
    d[np.arange(len(d)), np.arange(len(d))] = np.inf
    i = int(d.min(axis=1).argmax())  # the query farthest from every other point of the cell
    token = int(pts["q"][i, 2])
    at = page.evaluate("xy => qkatlas.current.pixelAt(xy)", pts["q"][i, :2].tolist())
    page.mouse.move(at["x"] + 0.5, at["y"] + 0.5)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible", timeout=5000)
    assert tip.locator(".tip-head .side-badge").inner_text() == "Q"
    assert tip.locator("mark").inner_text().strip() == cols["text"][token].strip()
    assert f"L{layer} H{head}" in tip.inner_text()
    assert page.locator(".view-matrix").get_attribute("data-hover") == f"{layer},{head},query,{token}"
    ring = page.locator(".hover-ring:visible").bounding_box()
    assert (ring["x"] + ring["width"] / 2, ring["y"] + ring["height"] / 2) == pytest.approx((at["x"], at["y"]), abs=1.5)
    screenshot(page, "matrix-hover")
    page.mouse.move(5, 5)  # off the matrix: the tooltip goes
    tip.wait_for(state="hidden", timeout=5000)


def test_matrix_zooms_at_the_pointer_pans_by_dragging_and_resets(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["text"])
    matrix = page.locator(".view-matrix")
    cell = page.evaluate("qkatlas.current.cell")
    spot = [0.5, 0.5]  # the middle of L0 H0 (near the matrix's edge the view stops at the edge instead)
    at = page.evaluate("xy => qkatlas.current.pixelAt(xy)", spot)
    page.mouse.move(at["x"], at["y"])
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"qkatlas.current.cell > {1.5 * cell}")
    drawn = page.evaluate("qkatlas.current.points.redraw()")
    # the spot under the pointer stays under it, bigger; every point of the cells in view is drawn
    assert page.evaluate("xy => qkatlas.current.pixelAt(xy)", spot) == pytest.approx(at, abs=2)
    in_view = page.evaluate("qkatlas.current.points.visiblePoints(qkatlas.current.frameSpec())")
    assert drawn == in_view > 0
    assert page.locator(".cell[data-layer='0'][data-head='0']").bounding_box()["width"] == pytest.approx(page.evaluate("qkatlas.current.cell"), abs=1)
    screenshot(page, "matrix-zoomed")
    # a drag pans (the matrix body scrolls with it) and opens no head
    body = page.locator(".view-matrix .matrix-body")
    before, most = body.evaluate("e => [[e.scrollLeft, e.scrollTop], [e.scrollWidth - e.clientWidth, e.scrollHeight - e.clientHeight]]")
    page.mouse.down()
    page.mouse.move(at["x"] - 120, at["y"] - 80, steps=6)
    page.mouse.up()
    after = body.evaluate("e => [e.scrollLeft, e.scrollTop]")
    assert after == pytest.approx([min(before[0] + 120, most[0]), min(before[1] + 80, most[1])], abs=2)
    assert after != before
    page.wait_for_timeout(300)
    assert parse_qs(urlparse(page.url).query).get("view", ["matrix"]) == ["matrix"] and matrix.is_visible()
    # Reset view: the whole matrix again
    matrix.locator(".toolbar button", has_text="Reset view").click()
    page.wait_for_function(f"qkatlas.current.cell === {cell}")
    assert body.evaluate("e => [e.scrollLeft, e.scrollTop]") == [0, 0]
    # a click that does not move still opens the head under it
    page.locator(".cell[data-layer='1'][data-head='2']").click()
    wait_drawn(page, "head")
    assert parse_qs(urlparse(page.url).query)["view"] == ["head"]


def test_a_head_of_half_a_million_tokens_draws_every_point_and_hovers_one(page, big_head_server, api):
    url, atlas = big_head_server
    open_view(page, url, atlas=atlas, view="head", layer=0, head=0)
    wait_drawn(page, "head", timeout=180_000)
    tokens = 250_000
    assert page.locator(".view-head").get_attribute("data-points") == str(2 * tokens)
    assert page.locator(".head-plot").get_attribute("data-drawn") == str(2 * tokens)
    assert page.locator(".head-plot .js-plotly-plot, .head-plot .plot-container").count() == 0  # no plotly for 2-D
    # the query lying farthest out: the point under the pointer, named in the tooltip
    token = page.evaluate("""() => {
        const {q, T} = qkatlas.current.plot.pts;
        let mx = 0, my = 0;
        for (let i = 0; i < T; i++) { mx += q[0][i] / T; my += q[1][i] / T; }
        let best = 0, far = -1;
        for (let i = 0; i < T; i++) { const d = (q[0][i] - mx) ** 2 + (q[1][i] - my) ** 2; if (d > far) { far = d; best = i; } }
        return best;
    }""")
    at = page.evaluate(f"qkatlas.current.plot.pixelOf({token})")
    page.mouse.move(at["x"], at["y"])
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible", timeout=10_000)
    text = api.get(f"{url}/api/atlases/{atlas}/tokens?format=json").json()["columns"]["text"][token]
    assert tip.locator(".tip-head .side-badge").inner_text() == "Q"
    assert tip.locator("mark").inner_text().strip() == text.strip()
    screenshot(page, "head-half-a-million")


def test_a_2d_head_view_from_a_link_loads_no_plotly_and_every_module_at_once(page, server, e2e_atlases):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    open_view(page, server, "head", atlas=e2e_atlases["text"], view="head", layer=1, head=1)
    assert not any("vendor/plotly" in url for url in requested)  # 4.8 MB the 2-D views do not need
    html = (FRONTEND / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="js/([a-z0-9]+\.js)">', html))
    assert preloaded == {f.name for f in (FRONTEND / "js").glob("*.js")} - {"app.js"}
    page.locator("#dim-picker [data-dim='3']").click()  # 3-D is plotly's: it loads now
    wait_drawn(page, "head", after=1)
    assert any(url.endswith("/vendor/plotly.min.js") for url in requested)
