"""A decoder LM of SmolLM2's shape: 30 layers of 9 query heads sharing 3 key/value heads,
causal (a synthetic atlas of that size). The matrix stays readable and fast, its columns are
grouped by key/value head, and the head view says which heads share a key/value head."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from .pages import open_view, screenshot, wait_drawn
from .pixels import matrix_cells, warm_and_cool

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

LAYERS, HEADS, KV_HEADS = 30, 9, 3
MIN_CELL = 56  # px: below this a head's layout stops being readable
MIN_LABEL_PX = 10


def boxes(locator) -> np.ndarray:
    """(n, 4) x0, y0, x1, y1 in page pixels (scroll included) of every element matched."""
    return np.array(locator.evaluate_all("""els => els.map(e => {
        const r = e.getBoundingClientRect();
        return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY];
    })"""))


def overlaps(b: np.ndarray) -> int:
    """How many pairs of boxes share an area."""
    w = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    h = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    both = (w > 0.5) & (h > 0.5)
    np.fill_diagonal(both, False)
    return int(both.sum() // 2)


def test_matrix_of_30_by_9_heads_shows_every_cell_apart_readable_and_fast(page, gqa_server):
    url, atlas = gqa_server
    open_view(page, url, "matrix", atlas=atlas)
    cells = page.locator(".matrix-grid .cell")
    assert cells.count() == LAYERS * HEADS
    cell = boxes(cells)
    assert overlaps(cell) == 0
    assert (cell[:, 2] - cell[:, 0]).min() >= MIN_CELL and (cell[:, 3] - cell[:, 1]).min() >= MIN_CELL
    # every label reads whole, inside its own cell, in a legible size
    labels = page.locator(".matrix-grid .cell-label")
    assert labels.all_inner_texts() == [f"L{layer} H{head}" for layer in range(LAYERS) for head in range(HEADS)]
    label = boxes(labels)
    assert np.all(label[:, :2] >= cell[:, :2]) and np.all(label[:, 2:] <= cell[:, 2:])
    assert overlaps(label) == 0
    assert labels.evaluate_all("els => els.every(e => e.scrollWidth <= e.clientWidth)")
    assert min(labels.evaluate_all("els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")) >= MIN_LABEL_PX
    # every head is drawn in its own cell: queries (warm) and keys (cool) in each
    cells = matrix_cells(page)
    assert sorted(cells) == [(layer, head) for layer in range(LAYERS) for head in range(HEADS)]
    for (layer, head), pixels in cells.items():
        warm, cool = warm_and_cool(pixels)
        assert warm > 50 and cool > 50, f"L{layer} H{head} is not drawn"
    # a matrix taller than the window scrolls inside the view: nothing of the page covers it
    page.locator(".matrix-body").evaluate("e => e.scrollTo(0, 0)")
    body = page.locator(".matrix-body").bounding_box()
    assert body["y"] + body["height"] <= page.locator(".helpline").bounding_box()["y"] + 0.5
    screenshot(page, "matrix-30x9-top")
    page.locator(".matrix-body").evaluate("e => e.scrollTo(0, e.scrollHeight)")
    assert page.locator(".kv-band").bounding_box()["y"] == pytest.approx(body["y"], abs=1)  # the band stays on top
    screenshot(page, "matrix-30x9-bottom")

    page.locator(f".cell[data-layer='{LAYERS - 1}'][data-head='{HEADS - 1}']").click()
    wait_drawn(page, "head")
    query = parse_qs(urlparse(page.url).query)
    assert (query["view"], query["layer"], query["head"]) == (["head"], [str(LAYERS - 1)], [str(HEADS - 1)])
    assert page.locator(".view-head .toolbar .title").inner_text() == f"L{LAYERS - 1} H{HEADS - 1}"
    assert page.locator(".view-head").get_attribute("data-points") == str(2 * 600)


def test_matrix_groups_the_columns_of_heads_that_share_a_key_value_head(page, gqa_server, api):
    url, atlas = gqa_server
    open_view(page, url, "matrix", atlas=atlas)
    size = HEADS // KV_HEADS
    assert page.locator(".view-matrix .toolbar .title").inner_text().endswith(f"sharing {KV_HEADS} key/value heads")
    segments = page.locator(".kv-band .kv-seg")
    assert segments.all_inner_texts() == [f"KV {kv} · H{kv * size}–H{kv * size + size - 1}" for kv in range(KV_HEADS)]
    # each band segment spans exactly the columns of its group
    band = boxes(segments)
    first_row = boxes(page.locator(".cell[data-layer='0']"))
    for kv in range(KV_HEADS):
        assert band[kv, 0] == pytest.approx(first_row[kv * size, 0], abs=6)
        assert band[kv, 2] == pytest.approx(first_row[kv * size + size - 1, 2], abs=6)
    starts = page.locator(".cell.kv-start[data-layer='0']").evaluate_all("els => els.map(e => Number(e.dataset.head))")
    assert starts == list(range(size, HEADS, size))


def test_matrix_without_grouping_shows_no_key_value_band(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["text"])
    assert not page.locator(".kv-band").is_visible()
    assert page.locator(".cell.kv-start").count() == 0
    assert "key/value" not in page.locator(".view-matrix .toolbar .title").inner_text()


def test_head_view_says_which_key_value_head_a_query_head_shares(page, gqa_server, api):
    """Needs the API's kv_heads (atlas summary) and kv_head / kv_group (head info)."""
    url, atlas = gqa_server
    assert api.get(f"{url}/api/atlases/{atlas}").json()["kv_heads"] == KV_HEADS
    info = api.get(f"{url}/api/atlases/{atlas}/heads/4/7").json()
    assert (info["kv_head"], info["kv_group"]) == (2, [6, 7, 8])
    open_view(page, url, "head", atlas=atlas, view="head", layer=4, head=7)
    line = page.locator(".view-head .toolbar .kv-share")
    assert line.inner_text() == "shares keys with H6, H8 (KV head 2 of 3)"
    screenshot(page, "head-gqa")
    line.locator("button.link", has_text="H8").click()
    page.wait_for_function("new URL(location.href).searchParams.get('head') === '8'")
    page.wait_for_function("document.querySelector('.view-head .kv-share')?.textContent === 'shares keys with H6, H7 (KV head 2 of 3)'")


def test_head_view_of_an_atlas_without_grouping_says_nothing_of_key_value_heads(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    summary = api.get(f"/api/atlases/{atlas}").json()
    assert summary.get("kv_heads", summary["heads"]) == summary["heads"]
    open_view(page, server, "head", atlas=atlas, view="head", layer=1, head=2)
    assert page.locator(".view-head .kv-share").count() == 0
