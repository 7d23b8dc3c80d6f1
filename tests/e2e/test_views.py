"""The browser front end, checked in headless Chromium against the real server: what the page
shows must agree with what the API answers."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from .builds import layout_heads, write_heads
from .pages import drawn_count, open_view, screenshot, wait_drawn
from .pixels import along, canvas_rgb, matrix_cells, pixels_at, plot_pixels, screen_rgb, theme, warm_and_cool

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]  # one browser, one worker


def search_text(s: str) -> str:
    """A token's text as the search box matches it (see corpus.js: searchText)."""
    return re.sub(r"^[ Ġ▁]+", "", s or "").removeprefix("##").strip()


def matching_tokens(api, atlas: str, word: str) -> np.ndarray:
    texts = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]["text"]
    return np.array([search_text(t).lower() == word for t in texts])


def isolated_query(api, atlas: str, layer: int, head: int) -> int:
    """The query whose point lies farthest from every other point: hovering it hits only it."""
    pts = np.array(api.get(f"/api/atlases/{atlas}/heads/{layer}/{head}/points?method=pca&dim=2&format=json").json()["points"])
    tokens = len(pts) // 2
    d = np.linalg.norm(pts[:tokens, None, :] - pts[None, :, :], axis=-1)
    d[np.arange(tokens), np.arange(tokens)] = np.inf
    return int(d.min(axis=1).argmax())


def point_pixel(page, row: int) -> tuple[float, float]:
    p = page.evaluate(f"qkatlas.current.plot.pixelOf({row})")
    return p["x"], p["y"]


def test_matrix_draws_every_head_into_one_canvas(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    summary = api.get(f"/api/atlases/{atlas}").json()
    layers, heads = summary["layers"], summary["heads"]
    open_view(page, server, "matrix", atlas=atlas)
    labels = page.locator(".matrix-grid .cell-label").all_inner_texts()
    assert len(labels) == layers * heads
    assert f"L{layers - 1} H{heads - 1}" in labels
    # all heads in one canvas (no WebGL context per head, no plotly figure at all)
    assert page.locator(".view-matrix canvas").count() == 1
    assert page.locator(".view-matrix .js-plotly-plot").count() == 0
    res = api.get(f"/api/atlases/{atlas}/matrix", params={"method": "pca", "dim": 2, "max_points": 2000})
    assert page.locator(".view-matrix").get_attribute("data-points") == str(layers * heads * int(res.headers["X-Points"]))
    # every cell has warm (query) and cool (key) pixels drawn in it
    cells = matrix_cells(page)
    assert sorted(cells) == [(layer, head) for layer in range(layers) for head in range(heads)]
    assert all(min(warm_and_cool(pixels)) > 20 for pixels in cells.values())
    assert page.locator("#method-picker [data-method=pca]").get_attribute("class").count("active") == 1
    screenshot(page, "matrix")


def test_random_init_atlas_is_labelled_in_the_header(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["text"])
    assert page.locator("#atlas-badges").inner_text().lower().startswith("random init")
    assert "random init" in page.locator("#atlas-picker option:checked").inner_text()


def test_clicking_a_head_in_the_matrix_opens_it(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    open_view(page, server, "matrix", atlas=atlas)
    page.locator(".cell[data-layer='1'][data-head='2']").click()
    wait_drawn(page, "head")
    query = parse_qs(urlparse(page.url).query)
    assert query["view"] == ["head"] and query["layer"] == ["1"] and query["head"] == ["2"]
    assert page.locator(".view-head .toolbar .title").inner_text() == "L1 H2"
    tokens = api.get(f"/api/atlases/{atlas}").json()["tokens"]
    assert page.locator(".view-head").get_attribute("data-points") == str(2 * tokens)
    quality = api.get(f"/api/atlases/{atlas}/heads/1/2").json()["projections"]["pca-2d"]["quality"]["knn_recall@10"]
    assert float(page.locator(".view-head .quality-value").inner_text()) == pytest.approx(quality, abs=5e-4)
    page.keyboard.press("ArrowRight")  # next head
    page.wait_for_function("new URL(location.href).searchParams.get('head') === '3'")
    assert page.locator(".view-head .toolbar .title").inner_text() == "L1 H3"
    page.go_back()  # the browser's back button returns to the matrix
    page.wait_for_function("document.body.dataset.view === 'matrix'")
    assert page.locator(".view-matrix").is_visible() and not page.locator(".view-head").is_visible()


def test_head_view_shows_how_its_layout_and_joint_space_agree_with_attention(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    open_view(page, server, "head", atlas=atlas, view="head", layer=1, head=1)
    info = api.get(f"/api/atlases/{atlas}/heads/1/1").json()
    shown = float(page.locator(".view-head .agreement-value").inner_text())
    assert shown == pytest.approx(info["projections"]["pca-2d"]["quality"]["attention_agreement"], abs=5e-4)
    joint = page.locator(".joint-agreement").inner_text()  # the head's card, in the side panel
    assert joint.startswith(f"{info['joint']['joint']['attention_agreement']:.3g} (raw q/k ")
    assert f"{info['joint']['raw']['attention_agreement']:.3g}" in joint
    assert "faithful to attention" in page.locator(".joint-agreement").locator("xpath=..").inner_text()


def test_hovering_a_point_shows_its_token_in_its_sentence(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    token = isolated_query(api, atlas, 0, 1)
    cols = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    items = api.get(f"/api/atlases/{atlas}/items?format=json").json()["columns"]
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=1)
    page.mouse.move(*point_pixel(page, token))
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible", timeout=3000)
    assert tip.locator("mark").inner_text().strip() == cols["text"][token].strip()
    assert tip.locator(".tip-sentence").inner_text().split() == items["text"][cols["item"][token]].split()
    assert f"position {cols['position'][token]}" in tip.inner_text()
    screenshot(page, "head-hover")


def test_clicking_a_query_lists_the_keys_it_attends_to_most_as_the_api_does(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    token = isolated_query(api, atlas, 0, 1)
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=1)
    page.mouse.click(*point_pixel(page, token))
    rows = page.locator("ol.neighbours li.neighbour")
    rows.first.wait_for(timeout=5000)
    expected = api.get(f"/api/atlases/{atlas}/heads/0/1/neighbours",
                       params={"token": token, "side": "query", "k": 10, "by": "attention"}).json()["neighbours"]
    shown = [(int(r.get_attribute("data-token")), r.get_attribute("data-side")) for r in rows.all()]
    assert shown == [(n["token"], n["side"]) for n in expected]
    assert all(side == "key" for _, side in shown)
    scores = [float(s) for s in rows.locator(".n-score").all_inner_texts()]
    assert scores == pytest.approx([n["score"] for n in expected], rel=2e-3, abs=1e-3)
    assert parse_qs(urlparse(page.url).query)["token"] == [str(token)]
    # the neighbours are drawn as lines from the clicked point, each to a dot, the point ringed
    overlay = page.locator(".head-plot svg.plot-overlay")
    assert overlay.locator("line.neighbour-line").count() == len(expected)
    assert overlay.locator("circle.neighbour-dot").count() == len(expected)
    ring = overlay.locator("circle.selected-ring")
    assert ring.count() == 1
    box, at = ring.bounding_box(), point_pixel(page, token)
    assert (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2) == pytest.approx(at, abs=1.5)
    screenshot(page, "head-selected")


def test_search_highlights_every_occurrence_in_head_and_matrix(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    mask = matching_tokens(api, atlas, "the")
    open_view(page, server, "head", atlas=atlas, view="head", layer=1, head=0)
    before = drawn_count(page, "head")
    page.locator("#search").fill("the")
    page.wait_for_function(f"document.querySelector('#search-count').dataset.count === '{int(mask.sum())}'")
    items = len(set(np.array(api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]["item"])[mask]))
    assert page.locator("#search-count").inner_text() == f"{int(mask.sum())} in {items}"
    page.wait_for_function(f"document.querySelector('.view-head').dataset.matches === '{2 * int(mask.sum())}'")
    assert drawn_count(page, "head") == before  # highlighting does not reload the head
    # every match is drawn on top, in the match colour, where its point lies
    colours = theme(page)
    plot = page.locator(".head-plot")
    img = screen_rgb(plot)
    xy = plot_pixels(page, plot)[np.r_[mask, mask]]
    assert np.abs(pixels_at(img, xy) - colours["MATCH"]).max(axis=1).mean() < 12
    page.locator("#view-tabs [data-view=matrix]").click()
    wait_drawn(page, "matrix")
    res = api.get(f"/api/atlases/{atlas}/matrix", params={"method": "pca", "dim": 2, "max_points": 2000})
    rows = np.frombuffer(res.content[: 4 * int(res.headers["X-Points"])], dtype="<i4")
    tokens = int(res.headers["X-Tokens"]) if "X-Tokens" in res.headers else api.get(f"/api/atlases/{atlas}").json()["tokens"]
    cells = int(res.headers["X-Layers"]) * int(res.headers["X-Heads"])
    assert page.locator(".view-matrix").get_attribute("data-matches") == str(int(mask[rows % tokens].sum()) * cells)
    canvas = canvas_rgb(page.locator(".view-matrix canvas"))
    d = page.evaluate("""() => { const d = qkatlas.current.placed(), c = document.querySelector('.view-matrix canvas');
        return {unit: c.width / d.heads, x: [...d.qx, ...d.kx], y: [...d.qy, ...d.ky], tok: [...d.qTok, ...d.kTok]}; }""")
    matched = mask[np.array(d["tok"])]
    xy = np.c_[d["x"], d["y"]][matched] * d["unit"]
    assert np.abs(pixels_at(canvas, xy) - colours["MATCH"]).max(axis=1).max() < 16
    screenshot(page, "matrix-search")


def test_regex_search_counts_like_the_token_table(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    texts = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]["text"]
    expected = sum(bool(re.search("^ba", search_text(t), re.I)) for t in texts)
    open_view(page, server, "matrix", atlas=atlas, search="^ba")
    page.wait_for_function(f"document.querySelector('#search-count').dataset.count === '{expected}'")
    assert page.locator("#search-count").inner_text().startswith(f"{expected} in ")
    assert page.locator("#search").input_value() == "^ba"


def test_url_restores_the_same_view_after_reload(page, browser_context, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    token = isolated_query(api, atlas, 1, 3)
    open_view(page, server, "head", atlas=atlas, view="head", layer=1, head=3)
    page.mouse.click(*point_pixel(page, token))
    page.locator("ol.neighbours li.neighbour").first.wait_for()
    page.locator(".side-head .color-select").select_option("position")
    page.locator("#search").fill("bank")
    page.wait_for_function("new URL(location.href).searchParams.get('search') === 'bank'")
    url = page.url
    before = {
        "title": page.locator(".view-head .toolbar .title").inner_text(),
        "selected": page.locator(".selected-text").inner_text(),
        "neighbours": page.locator("ol.neighbours li.neighbour").evaluate_all("els => els.map(e => e.dataset.token)"),
        "color": page.locator(".side-head .color-select").input_value(),
    }
    other = browser_context.new_page()
    try:
        other.goto(url)
        wait_drawn(other, "head")
        other.locator("ol.neighbours li.neighbour").first.wait_for()
        after = {
            "title": other.locator(".view-head .toolbar .title").inner_text(),
            "selected": other.locator(".selected-text").inner_text(),
            "neighbours": other.locator("ol.neighbours li.neighbour").evaluate_all("els => els.map(e => e.dataset.token)"),
            "color": other.locator(".side-head .color-select").input_value(),
        }
        assert after == before
        assert other.locator("#search").input_value() == "bank"
        assert other.locator("#dim-picker .active").inner_text() == "2-D"
    finally:
        other.close()


def test_sentence_view_draws_attention_lines_and_all_heads(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    cols = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    token = 12
    item = cols["item"][token]
    n = cols["item"].count(item)
    open_view(page, server, "sentence", atlas=atlas, view="sentence", layer=1, head=1, token=token)
    assert page.locator("svg.attn-lines text.tok-q").count() == n
    assert page.locator("svg.attn-lines text.tok-k").count() == n
    # the selected token's query is isolated: one line per key it attends to (causal: itself and before)
    attention = api.get(f"/api/atlases/{atlas}/items/{item}/attention", params={"layer": 1, "head": 1}).json()["attention"]
    position = cols["position"][token]
    expected = sum(w > 0.002 for w in attention[position])
    assert page.locator("svg.attn-lines g.lines line").count() == expected
    page.locator(f"svg.attn-lines text.tok-k[data-position='{n - 1}']").hover()
    column = sum(row[n - 1] > 0.002 for row in attention)
    assert page.locator("svg.attn-lines g.lines line").count() == column
    assert "key" in page.locator(".view-sentence .status-line").inner_text()
    screenshot(page, "sentence")
    page.locator(".view-sentence [data-mode=all]").click()
    wait_drawn(page, "sentence", after=1)
    heads = api.get(f"/api/atlases/{atlas}").json()["heads"]
    assert page.locator(".view-sentence canvas.heatmap").count() == heads
    screenshot(page, "sentence-all-heads")


def test_image_view_shows_patch_attention_heat_map(page, server, api, e2e_atlases):
    atlas = e2e_atlases["image"]
    info = api.get(f"/api/atlases/{atlas}").json()["image"]
    open_view(page, server, "image", atlas=atlas, view="image", item=1, layer=1, head=0)
    img = page.locator(".view-image img.patch-img")
    page.wait_for_function("document.querySelector('.view-image img.patch-img').naturalWidth > 0")
    assert page.locator(".view-image").get_attribute("data-patches") == str(info["grid"] ** 2)
    box = img.bounding_box()
    cell = box["width"] / info["grid"]
    page.mouse.move(box["x"] + 2.5 * cell, box["y"] + 1.5 * cell)  # patch row 1, column 2
    page.wait_for_function("document.querySelector('.view-image .status-line').textContent.includes('patch r1 c2')")
    assert page.locator(".patch-card img.patch-thumb").count() == 1
    heat = page.evaluate("""() => {
        const c = document.querySelector('.view-image canvas.patch-overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
        return painted / (c.width * c.height);
    }""")
    assert heat > 0.5  # the heat map covers the image
    screenshot(page, "image")


def test_image_head_view_colours_by_patch_row_and_hovers_a_thumbnail(page, server, api, e2e_atlases):
    atlas = e2e_atlases["image"]
    token = isolated_query(api, atlas, 0, 0)
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=0, color="row")
    options = page.locator(".side-head .color-select option").all_inner_texts()
    assert {"patch row", "patch column", "image"} <= set(options)
    assert page.locator(".side-head .color-select").input_value() == "row"
    page.mouse.move(*point_pixel(page, token))
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    cols = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    row, col = cols["row"][token], cols["col"][token]
    assert tip.locator(".tip-head b").inner_text() == (f"patch r{row} c{col}" if row >= 0 else cols["text"][token])
    if row >= 0:
        page.wait_for_function("document.querySelector('#tooltip img.patch-thumb')?.naturalWidth > 0")
    screenshot(page, "image-head")


def test_a_bad_url_parameter_shows_the_api_message(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    detail = api.get(f"/api/atlases/{atlas}/heads/99/0/points").json()["detail"]
    open_view(page, server, atlas=atlas, view="head", layer=99)
    box = page.locator(".view-head .error-box")
    box.wait_for(timeout=10000)
    assert detail in box.inner_text()
    screenshot(page, "error-layer")
    open_view(page, server, atlas=atlas, view="head", layer="abc")
    page.locator("#banner").wait_for(state="visible")  # filled once the page's modules have run
    assert "layer" in page.locator("#banner").inner_text()
    open_view(page, server, atlas="no-such-atlas")
    page.locator(".error-box").wait_for()
    assert "no-such-atlas" in page.locator(".error-box").inner_text()


def test_three_d_head_view_draws_queries_and_keys_in_3d(page, server, e2e_atlases):
    open_view(page, server, "head", atlas=e2e_atlases["text"], view="head", dim=3)
    types = page.evaluate("document.querySelector('.head-plot')._fullData.map(t => t.type)")
    assert types[:2] == ["scatter3d", "scatter3d"]
    assert page.locator("#dim-picker .active").inner_text() == "3-D"
    colours = theme(page)
    pixels = screen_rgb(page.locator(".head-plot")).reshape(-1, 3)
    for side in ("Q", "K"):
        assert np.sum(along(pixels, colours["BG"], colours[side]) >= 0.5) > 300, f"no {side} points on screen"
    screenshot(page, "head-3d")


def test_a_method_being_computed_shows_progress_and_appears_without_reload(page, scratch_server):
    url, atlas = scratch_server
    heads = layout_heads(atlas, "pca-2d")
    write_heads(atlas, heads[: len(heads) // 2], "umap-2d")  # half the heads "computed" so far
    open_view(page, url, "matrix", atlas=atlas.name)
    button = page.locator("#method-picker [data-method=umap]")
    assert button.inner_text() == f"UMAP {len(heads) // 2}/{len(heads)}"
    button.click()
    wait_drawn(page, "matrix", after=1)
    assert page.locator(".matrix-grid .cell.pending").count() == len(heads) - len(heads) // 2
    screenshot(page, "matrix-pending")
    drawn = drawn_count(page, "matrix")
    write_heads(atlas, heads[len(heads) // 2:], "umap-2d")
    page.wait_for_function("document.querySelector('#method-picker [data-method=umap]').textContent === 'UMAP'", timeout=15000)
    wait_drawn(page, "matrix", after=drawn, timeout=15000)
    assert page.locator(".matrix-grid .cell.pending").count() == 0


def test_real_model_matrix_head_and_sentence(page, server, api, minilm_atlas):
    """MiniLM with its real weights: every head drawn, a word-piece sentence, and a query's
    top keys as the API ranks them."""
    atlas = minilm_atlas.name
    summary = api.get(f"/api/atlases/{atlas}").json()
    open_view(page, server, "matrix", atlas=atlas)
    assert page.locator(".matrix-grid .cell").count() == summary["layers"] * summary["heads"] == 72
    assert page.locator("#atlas-badges .badge.warn").count() == 0  # trained weights: no "random init"
    page.locator(".cell[data-layer='0'][data-head='2']").click()
    wait_drawn(page, "head")
    token = isolated_query(api, atlas, 0, 2)
    page.mouse.click(*point_pixel(page, token))
    rows = page.locator("ol.neighbours li.neighbour")
    rows.first.wait_for()
    expected = api.get(f"/api/atlases/{atlas}/heads/0/2/neighbours",
                       params={"token": token, "side": "query", "k": 10, "by": "attention"}).json()["neighbours"]
    assert [int(t) for t in rows.evaluate_all("els => els.map(e => e.dataset.token)")] == [n["token"] for n in expected]
    page.locator(".selection button", has_text="Open sentence view").click()
    wait_drawn(page, "sentence")
    labels = page.locator("svg.attn-lines text.tok-q").evaluate_all("els => els.map(e => e.textContent)")
    assert labels[0] == "[CLS]" and labels[-1] == "[SEP]"
    screenshot(page, "minilm-sentence")


def line_ends(page) -> list[tuple[int, int]]:
    """Every attention line drawn, as (query position, key position) from its two ends."""
    ends = page.locator("svg.attn-lines g.lines line").evaluate_all(
        "els => els.map(e => [Number(e.getAttribute('y1')), Number(e.getAttribute('y2'))])")
    row = 22  # attention.js: one token per 22 px
    return [(round((y1 - 26 - row / 2) / row), round((y2 - 26 - row / 2) / row)) for y1, y2 in ends]


def test_sentence_view_of_a_causal_model_says_so_and_draws_no_line_to_a_later_token(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    assert api.get(f"/api/atlases/{atlas}").json()["causal"] is True
    attention = np.array(api.get(f"/api/atlases/{atlas}/items/4/attention", params={"layer": 0, "head": 3}).json()["attention"])
    n = len(attention)
    open_view(page, server, "sentence", atlas=atlas, view="sentence", item=4, layer=0, head=3)
    assert "causal" in page.locator(".view-sentence .causal-note").inner_text().lower()
    assert page.locator("svg.attn-lines .col-head.k").text_content().lower() == "keys (causal)"
    # every line of the sentence, no token picked: each goes to the query's own or an earlier key
    drawn = line_ends(page)
    assert drawn and all(key <= query for query, key in drawn)
    assert sorted(drawn) == sorted((i, j) for i in range(n) for j in range(i + 1) if attention[i, j] > 0.01)
    # a query in the middle: its lines reach only back, the later keys are shown masked
    middle = n // 2
    page.locator(f"svg.attn-lines text.tok-q[data-position='{middle}']").hover()
    assert {key for _, key in line_ends(page)} <= set(range(middle + 1))
    masked = page.locator("svg.attn-lines text.tok-k.masked").evaluate_all("els => els.map(e => Number(e.dataset.position))")
    assert masked == list(range(middle + 1, n))
    assert "masked (causal)" in page.locator(".view-sentence .status-line").inner_text()
    # the attention matrix shows the masked half as the page, not as a weight of 0
    colours = theme(page)
    matrix = canvas_rgb(page.locator(".view-sentence canvas.heatmap"))
    cell = matrix.shape[0] / n
    above = matrix[int(0.5 * cell), int((n - 0.5) * cell)]  # query 0, key n-1
    assert np.abs(above - colours["BG"]).max() <= 1
    screenshot(page, "sentence-causal")


def test_sentence_view_of_a_bidirectional_model_draws_lines_both_ways(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    assert api.get(f"/api/atlases/{atlas}").json()["causal"] is False
    open_view(page, server, "sentence", atlas=atlas, view="sentence", item=4, layer=0, head=1)
    assert page.locator(".view-sentence .causal-note").count() == 0
    assert page.locator("svg.attn-lines .col-head.k").text_content().lower() == "keys"
    assert any(key > query for query, key in line_ends(page))
    assert page.locator("svg.attn-lines text.masked").count() == 0
