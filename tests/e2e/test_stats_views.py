"""What each head does, in the browser: the map of heads and the statistics table (heads.js),
the head view's statistics, the matrix tinted, ordered and filtered by a statistic, and two
atlases side by side (compare.js) with the same token highlighted in both. Everything shown is
checked against what the API answers; pixels against the theme's colours."""

from __future__ import annotations

import csv
import io
import shutil
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from qkatlas.build import build
from qkatlas.corpus import load_corpus
from qkatlas.manifest import read_manifest
from qkatlas.stats_run import open_with_stats, stats_stage
from qkatlas.store import AtlasWriter

from .conftest import running_server, synthetic_atlas
from .pages import drawn_count, open_view, screenshot, wait_drawn
from .pixels import along, download_bytes, screen_rgb, theme

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

STATS = ["entropy", "distance", "special", "first", "previous", "self", "next", "induction", "positional", "token"]


def stats_of(api, atlas: str) -> dict:
    return api.get(f"/api/atlases/{atlas}/stats").json()


def url_state(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def hover(page, at: dict) -> None:
    """Move the pointer onto a point of the page, from beside it (a move onto it, as a hand does)."""
    page.mouse.move(at["x"] - 20, at["y"] - 20)
    page.mouse.move(at["x"], at["y"], steps=3)


# ---- the overlays' pure functions, on a table whose answers are known by hand ----------------


def test_order_and_filter_functions_give_the_hand_worked_answers(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["bert"])
    out = page.evaluate("""async () => {
        const o = await import('./js/overlays.js');
        const { HeadStats } = await import('./js/headstats.js');
        // 2 layers x 3 heads; entropy of L0: .5 .9 .1, of L1: .3 null .7
        const s = new HeadStats({atlas: 'x', n: 6, columns: {
            layer: [0, 0, 0, 1, 1, 1], head: [0, 1, 2, 0, 1, 2],
            kind: ['sink', 'broad', 'sink', 'local', 'broad', 'sink'], label: ['', '', '', '', '', ''],
            entropy: [0.5, 0.9, 0.1, 0.3, null, 0.7], distance: [1, 2, 3, 4, 5, 6]},
            definitions: {entropy: {definition: 'e', unit: 'fraction'}, distance: {definition: 'd', unit: 'tokens or patches'}},
            distance_unit: 'patches'});
        return {
            names: s.names, kinds: s.kinds, distanceRange: s.range('distance'), entropyRange: s.range('entropy'),
            unit: s.unit('distance'), format: [s.format('distance', 3), s.format('entropy', 1.3e-8), s.format('entropy', null)],
            sortDesc: o.sortedRows(s, '-entropy'), sortAsc: o.sortedRows(s, 'entropy'), unsorted: o.sortedRows(s, ''),
            unknown: o.parseSort('-nope', s), where: o.parseWhere('entropy>=0.5', s), badWhere: o.parseWhere('entropy>0.5', s),
            keptHigh: [0, 1, 2, 3, 4, 5].filter(o.keeper(s, {where: 'entropy>=0.5'})),
            keptSinkLow: [0, 1, 2, 3, 4, 5].filter(o.keeper(s, {kind: 'sink', where: 'entropy<=0.5'})),
            keepAll: o.keeper(s, {}),
            columns: Array.from(o.columnsOf(s, '-entropy', 2, 3)),
            headsAt: Array.from(o.headsAt(o.columnsOf(s, '-entropy', 2, 3), 3)),
        };
    }""")
    assert out["names"] == ["entropy", "distance"]  # in the API's column order, only those with a definition
    assert out["kinds"] == ["sink", "broad", "local"]  # most heads first
    assert out["distanceRange"] == [0, 6] and out["entropyRange"] == [0, 1]  # fractions always span 0..1
    assert out["unit"] == "patches" and out["format"] == ["3.00 patches", "0.000", "–"]
    assert out["sortDesc"] == [1, 5, 0, 3, 2, 4]  # the null last
    assert out["sortAsc"] == [2, 3, 0, 5, 1, 4]  # the null last whichever the direction
    assert out["unsorted"] == [0, 1, 2, 3, 4, 5] and out["unknown"] is None
    assert out["where"] == {"name": "entropy", "op": ">=", "value": 0.5} and out["badWhere"] is None
    assert out["keptHigh"] == [0, 1, 5]  # a null fails a threshold
    assert out["keptSinkLow"] == [0, 2] and out["keepAll"] is None
    # layer 0 by entropy, highest first: H1 (.9), H0 (.5), H2 (.1); layer 1: H2 (.7), H0 (.3), H1 (null)
    assert out["columns"] == [1, 0, 2, 1, 2, 0]
    assert out["headsAt"] == [1, 0, 2, 2, 0, 1]


# ---- the heads view ---------------------------------------------------------------------------


def test_the_map_of_heads_draws_one_point_per_head_where_the_api_puts_it_and_a_click_opens_it(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    hm = api.get(f"/api/atlases/{atlas}/headmap").json()
    open_view(page, server, "heads", atlas=atlas, view="heads")
    dots = page.locator(".view-heads .headmap svg circle.dot")
    assert dots.count() == hm["layers"] * hm["heads"] == len(hm["points"])
    # every point where the map puts it: one scale across and down (y up), whatever the offset
    drawn = np.array([[page.evaluate(f"qkatlas.current.map.pixelOf({p['layer']}, {p['head']})")[k] for k in ("x", "y")]
                      for p in hm["points"]])
    xy = np.array([[p["x"], -p["y"]] for p in hm["points"]])
    scale = np.linalg.lstsq(np.c_[xy, np.ones(len(xy))], drawn, rcond=None)[0]
    assert np.allclose(scale[0, 1], 0, atol=1e-6) and np.allclose(scale[1, 0], 0, atol=1e-6)
    assert scale[0, 0] > 0 and np.isclose(scale[0, 0], scale[1, 1])
    # hovering a head names it, with its label, its numbers and its nearest heads as the API lists them
    p = hm["points"][5]
    hover(page, page.evaluate(f"qkatlas.current.map.pixelOf({p['layer']}, {p['head']})"))
    tip = page.locator("#tooltip .head-card")
    tip.wait_for()
    assert tip.locator(".card-title").inner_text() == f"L{p['layer']} H{p['head']}"
    assert tip.locator(".head-label").inner_text().strip() == p["label"]
    assert tip.locator("dd[data-stat=entropy]").inner_text() == f"{p['stats']['entropy']:.3f}"
    near = tip.locator(".nearest").inner_text()
    assert all(f"L{n['layer']} H{n['head']}" in near for n in p["nearest"])
    assert page.locator(".view-heads .hover-layer line.near-line").count() == len(p["nearest"])
    screenshot(page, "heads-view-hover")
    # a click opens that head in the head view, which shows the same label and numbers
    at = page.evaluate(f"qkatlas.current.map.pixelOf({p['layer']}, {p['head']})")
    page.mouse.click(at["x"], at["y"])
    wait_drawn(page, "head")
    assert url_state(page)["view"] == "head"
    assert (int(url_state(page).get("layer", 0)), int(url_state(page).get("head", 0))) == (p["layer"], p["head"])
    card = page.locator(".side-head .head-stats")
    card.locator(".head-label").wait_for()
    info = api.get(f"/api/atlases/{atlas}/heads/{p['layer']}/{p['head']}").json()["stats"]
    assert card.locator(".head-label").inner_text().strip() == info["label"]
    for name in STATS:
        shown = card.locator(f"dd[data-stat={name}]").inner_text()
        assert shown == ("–" if info[name] is None else f"{info[name]:.2f} tokens" if name == "distance" else f"{info[name]:.3f}")
    definitions = stats_of(api, atlas)["definitions"]
    assert definitions["positional"]["definition"] in card.locator("dt[data-stat=positional]").get_attribute("title")
    screenshot(page, "head-view-statistics")


def test_the_map_colours_heads_by_label_and_sizes_them_by_a_statistic(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    hm = api.get(f"/api/atlases/{atlas}/headmap").json()
    open_view(page, server, "heads", atlas=atlas, view="heads")
    page.locator(".view-heads .map-colour [data-colour=kind]").click()
    page.locator(".view-heads .size-select").select_option("positional")
    page.wait_for_function("document.querySelector('.view-heads .size-select').value === 'positional'")
    assert url_state(page)["mapcolor"] == "kind" and url_state(page)["size"] == "positional"
    colours = page.evaluate("""async () => { const t = await import('./js/theme.js'); return t.KINDS; }""")
    drawn = {(p["layer"], p["head"]): page.evaluate(f"qkatlas.current.map.pixelOf({p['layer']}, {p['head']})") for p in hm["points"]}
    assert all(drawn[(p["layer"], p["head"])]["fill"] == colours[p["kind"]] for p in hm["points"])
    # the radius grows with the statistic
    pos = np.array([p["stats"]["positional"] for p in hm["points"]])
    radius = np.array([drawn[(p["layer"], p["head"])]["r"] for p in hm["points"]])
    order = np.argsort(pos)
    assert np.all(np.diff(radius[order]) >= -1e-9) and radius[order[-1]] > radius[order[0]]
    legend = page.locator(".side-heads .legend .kind-row").all_inner_texts()
    counts = {k: sum(p["kind"] == k for p in hm["points"]) for k in {p["kind"] for p in hm["points"]}}
    assert sorted(legend) == sorted(f"{k} ({n})" for k, n in counts.items())
    # the header's SVG button saves the map as drawn: a point per head in its colour
    with page.expect_download() as got:
        page.locator("#export-svg").click()
    assert got.value.suggested_filename.endswith(".svg")
    svg = ET.fromstring(download_bytes(got.value))
    dots = [c for c in svg.iter("{http://www.w3.org/2000/svg}circle") if "dot" in (c.get("class") or "")]
    assert len(dots) == len(hm["points"])
    assert {c.get("fill") for c in dots} == {colours[p["kind"]] for p in hm["points"]}


def test_the_statistics_table_sorts_by_a_column_opens_a_head_and_downloads_csv_and_parquet(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    body = stats_of(api, atlas)
    cols = body["columns"]
    open_view(page, server, "heads", atlas=atlas, view="heads")
    rows = page.locator(".view-heads table.stats-table tbody tr")
    assert rows.count() == body["n"]
    order = lambda: rows.evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")  # noqa: E731
    assert order() == [[l, h] for l, h in zip(cols["layer"], cols["head"])]
    page.locator(".view-heads th[data-stat=first]").click()
    page.wait_for_function("new URLSearchParams(location.search).get('sort') === '-first'")
    by_first = sorted(range(body["n"]), key=lambda i: (-cols["first"][i], i))
    assert order() == [[cols["layer"][i], cols["head"][i]] for i in by_first]
    page.locator(".view-heads th[data-stat=first]").click()
    page.wait_for_function("new URLSearchParams(location.search).get('sort') === 'first'")
    assert order() == [[cols["layer"][i], cols["head"][i]] for i in sorted(range(body["n"]), key=lambda i: (cols["first"][i], i))]
    # the rows show the API's numbers and labels
    first = rows.first
    i = sorted(range(body["n"]), key=lambda i: (cols["first"][i], i))[0]
    assert first.locator("td[data-stat=first]").inner_text() == f"{cols['first'][i]:.3f}"
    assert first.locator(".head-label").inner_text().strip() == cols["label"][i]
    # CSV and Parquet, as the API serves them, every row
    for fmt in ("csv", "parquet"):
        with page.expect_download() as got:
            page.locator(f".view-heads .downloads a[data-format={fmt}]").click()
        download = got.value
        assert download.suggested_filename == f"{atlas}-stats.{fmt}"
        data = download_bytes(download)
        if fmt == "csv":
            table = list(csv.DictReader(io.StringIO(data.decode())))
            assert [int(r["layer"]) for r in table] == cols["layer"] and [r["label"] for r in table] == cols["label"]
            assert np.allclose([float(r["entropy"]) for r in table], cols["entropy"])
        else:
            table = pq.read_table(io.BytesIO(data)).to_pydict()
            assert table["label"] == cols["label"] and np.allclose(table["positional"], cols["positional"])
    # a row opens its head
    layer, head = cols["layer"][i], cols["head"][i]
    first.click()
    wait_drawn(page, "head")
    assert page.locator(".view-head .toolbar .title").inner_text() == f"L{layer} H{head}"


def test_the_map_stays_readable_and_quick_at_30_by_9_heads(page, settings, tmp_path_factory):
    """SmolLM2's shape (30 x 9 = 270 heads): every head a point, a hover names it, a click opens it."""
    data = tmp_path_factory.mktemp("map270")
    atlas = synthetic_atlas(data / "synthetic-30x9-stats", layers=30, heads=9, tokens=300, head_dim=16)
    # not causal: its statistics come from the stored vectors alone (no model to run the induction probe)
    AtlasWriter(atlas).write_manifest(read_manifest(atlas).model_copy(update={"causal": False}))
    stats_stage(settings.with_(data_dir=data), atlas)
    with running_server(settings.with_(data_dir=data)) as url:
        open_view(page, url, "heads", atlas=atlas.name, view="heads", mapcolor="kind")
        assert page.locator(".view-heads .headmap svg circle.dot").count() == 270
        assert page.locator(".view-heads table.stats-table tbody tr").count() == 270
        at = page.evaluate("qkatlas.current.map.pixelOf(29, 8)")
        hover(page, at)
        page.locator("#tooltip .head-card[data-layer='29'][data-head='8']").wait_for()
        screenshot(page, "heads-view-270")
        page.mouse.click(at["x"], at["y"])
        wait_drawn(page, "head")
        assert page.locator(".view-head .toolbar .title").inner_text() == "L29 H8"


# ---- the matrix's overlays --------------------------------------------------------------------


def cell_corner(page, layer: int, head: int) -> np.ndarray:
    """The median colour of a matrix cell's bottom-left corner as on screen (no points there: cells keep a margin)."""
    img = screen_rgb(page.locator(f".matrix-grid .cell[data-layer='{layer}'][data-head='{head}']"))
    h, w, _ = img.shape
    return np.median(img[h - 9: h - 3, 3:9].reshape(-1, 3), axis=0)


def test_the_matrix_orders_tints_and_dims_heads_by_a_statistic(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    body = stats_of(api, atlas)
    cols = body["columns"]
    summary = api.get(f"/api/atlases/{atlas}").json()
    layers, heads = summary["layers"], summary["heads"]
    value = {(l, h): v for l, h, v in zip(cols["layer"], cols["head"], cols["positional"])}
    open_view(page, server, "matrix", atlas=atlas)
    before = page.evaluate("qkatlas.current.placed()")
    # order the heads of each layer by positional share, highest first, from the side panel
    page.locator(".side-matrix .sort-select").select_option("-positional")
    page.wait_for_function("new URLSearchParams(location.search).get('sort') === '-positional'")
    grid = page.locator(".matrix-grid .cell").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")
    expected = [[l, h] for l in range(layers) for h in sorted(range(heads), key=lambda h: (-value[(l, h)], h))]
    assert grid == expected
    # every point moved with its head: the same place in its cell, in the head's new column
    after = page.evaluate("qkatlas.current.placed()")
    P = len(before["qx"]) // (layers * heads)
    for layer in range(layers):
        for column, (_, head) in enumerate(expected[layer * heads:(layer + 1) * heads]):
            c = layer * heads + head
            qx0 = np.array(before["qx"][c * P:(c + 1) * P]) - head
            qx1 = np.array(after["qx"][c * P:(c + 1) * P]) - column
            assert np.allclose(qx0, qx1, atol=1e-5)
    # tint by positional share: each cell's corner is the ramp's colour at its value over the page
    page.locator(".side-matrix .tint-select").select_option("positional")
    page.wait_for_function("new URLSearchParams(location.search).get('tint') === 'positional'")
    page.evaluate("qkatlas.current.points.redraw()")
    colours = theme(page)
    alpha = page.evaluate("import('./js/theme.js').then(t => t.TINT_ALPHA)")
    for (layer, head), v in value.items():
        ramp = page.evaluate(f"import('./js/theme.js').then(t => t.parseColour(t.rampColour(t.TINT, {v})).slice(0, 3))")
        expect = colours["BG"] * (1 - alpha) + np.array(ramp) * alpha
        assert np.abs(cell_corner(page, layer, head) - expect).max() <= 3, (layer, head)
    # keep heads with positional >= the median: the rest are dimmed to the page's colour
    cut = float(np.median(list(value.values())))
    page.evaluate(f"qkatlas.store.set({{where: 'positional>={cut}'}})")
    page.locator(".matrix-grid .cell.dimmed").first.wait_for()
    dimmed = page.locator(".matrix-grid .cell.dimmed").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")
    assert sorted(map(tuple, dimmed)) == sorted(k for k, v in value.items() if v < cut)
    dim_alpha = page.evaluate("import('./js/theme.js').then(t => t.DIMMED_ALPHA)")
    layer, head = dimmed[0]
    t = along(cell_corner(page, layer, head), colours["BG"], colours["WHITE"], tol=6)
    assert abs(t) < 0.02  # a dimmed corner is the page's own colour (BG over BG)
    assert page.locator(".side-matrix .where-stat").input_value() == "positional"
    assert float(page.locator(".side-matrix .where-value").input_value()) == pytest.approx(cut)
    screenshot(page, "matrix-overlays")
    # all of it in the URL: a reload shows the same
    page.reload()
    wait_drawn(page, "matrix")
    page.locator(".matrix-grid .cell.dimmed").first.wait_for()
    assert page.locator(".matrix-grid .cell").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])") == expected
    assert page.locator(".side-matrix .tint-select").input_value() == "positional"
    assert page.locator(".side-matrix .sort-select").input_value() == "-positional"
    assert page.locator(".matrix-grid .cell.dimmed").count() == len(dimmed)
    assert dim_alpha > 0


def test_a_label_kind_filter_dims_the_other_kinds_in_the_matrix_the_map_and_the_table(page, server, api, e2e_atlases):
    atlas = e2e_atlases["bert"]
    cols = stats_of(api, atlas)["columns"]
    kind = max(set(cols["kind"]), key=cols["kind"].count)
    others = sorted((l, h) for l, h, k in zip(cols["layer"], cols["head"], cols["kind"]) if k != kind)
    open_view(page, server, "matrix", atlas=atlas)
    page.locator(".side-matrix .kind-select").select_option(kind)
    page.wait_for_function(f"new URLSearchParams(location.search).get('kind') === '{kind}'")
    got = page.locator(".matrix-grid .cell.dimmed").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")
    assert sorted(map(tuple, got)) == others
    page.locator("#view-tabs [data-view=heads]").click()
    wait_drawn(page, "heads")
    dimmed_dots = page.locator(".view-heads circle.dot.dimmed").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")
    dimmed_rows = page.locator(".view-heads tr.dimmed").evaluate_all("els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])")
    assert sorted(map(tuple, dimmed_dots)) == others == sorted(map(tuple, dimmed_rows))
    # ordered by the table's header here, the matrix shows that order when it is shown again
    page.locator(".view-heads th[data-stat=entropy]").click()
    page.wait_for_function("new URLSearchParams(location.search).get('sort') === '-entropy'")
    page.locator("#view-tabs [data-view=matrix]").click()
    value = {(l, h): v for l, h, v in zip(cols["layer"], cols["head"], cols["entropy"])}
    layers, heads = max(cols["layer"]) + 1, max(cols["head"]) + 1
    expected = [[l, h] for l in range(layers) for h in sorted(range(heads), key=lambda h: (-value[(l, h)], h))]
    grid = "els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.head)])"
    page.wait_for_function("expected => JSON.stringify(Array.from(document.querySelectorAll('.matrix-grid .cell'), "
                           "e => [Number(e.dataset.layer), Number(e.dataset.head)])) === JSON.stringify(expected)", arg=expected)
    assert page.locator(".matrix-grid .cell").evaluate_all(grid) == expected


# ---- statistics not computed yet ----------------------------------------------------------------


def test_statistics_not_computed_yet_say_how_to_compute_them_and_show_once_computed(page, settings, scratch_server):
    url, copy = scratch_server
    hidden = copy.parent / "stats.parquet.kept"
    shutil.move(copy / "stats.parquet", hidden)
    open_view(page, url, None, atlas=copy.name, view="heads")
    box = page.locator(".view-heads .stats-missing")
    box.wait_for()
    assert f"qkatlas stats {copy.name}" in box.locator("pre").inner_text()
    page.locator("#view-tabs [data-view=matrix]").click()
    wait_drawn(page, "matrix")  # the matrix draws; its overlay card says why it has no statistics
    assert f"qkatlas stats {copy.name}" in page.locator(".side-matrix .overlay-card .stats-missing pre").inner_text()
    page.locator(".matrix-grid .cell[data-layer='1'][data-head='1']").click()
    wait_drawn(page, "head")
    assert f"qkatlas stats {copy.name}" in page.locator(".side-head .head-stats .stats-missing pre").inner_text()
    page.locator("#view-tabs [data-view=heads]").click()
    page.locator(".view-heads .stats-missing").wait_for()
    # what `qkatlas stats ATLAS` does: compute them (the old file out of the way, so they are computed anew)
    hidden.unlink()
    open_with_stats(settings.with_(data_dir=copy.parent), copy.name)
    page.locator(".view-heads .stats-missing button").click()
    wait_drawn(page, "heads")
    assert page.locator(".view-heads circle.dot").count() == read_manifest(copy).layers * read_manifest(copy).heads
    assert page.locator(".view-heads .stats-missing").count() == 0
    page.locator("#view-tabs [data-view=head]").click()  # shown again, the head asks again
    page.locator(".side-head .head-stats .head-label").wait_for()
    assert page.locator(".side-head .head-stats .stats-missing").count() == 0


# ---- two atlases side by side -------------------------------------------------------------------


def word_token(api, atlas: str, item: int) -> int:
    """A token of `item` that is a whole ordinary word (its text, stripped, is alphabetic)."""
    cols = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    return next(t for t, (i, s, text) in enumerate(zip(cols["item"], cols["special"], cols["text"]))
                if i == item and not s and text.strip().isalpha() and len(text.strip()) > 3)


def test_compare_view_draws_both_maps_and_tables_on_one_scale(page, server, api, e2e_atlases):
    a, b = e2e_atlases["text"], e2e_atlases["bert"]
    open_view(page, server, "compare", atlas=a, view="compare", b=b)
    for side, atlas in (("a", a), ("b", b)):
        hm = api.get(f"/api/atlases/{atlas}/headmap").json()
        pane = page.locator(f".view-compare .pair-side.side-{side}")
        assert pane.locator("circle.dot").count() == len(hm["points"])
        assert pane.locator("table.stats-table tbody tr").count() == len(hm["points"])
    note = page.locator(".view-compare .compare-note").inner_text()
    assert "same corpus" in note and "character spans" in note
    # one scale: the same distance between heads is the same length on both sides
    bars = page.locator(".view-compare svg .scale-bar line").evaluate_all(
        "els => els.map(e => [Number(e.getAttribute('x2')) - Number(e.getAttribute('x1')), Number(e.parentNode.dataset.distance)])")
    assert len(bars) == 2 and np.isclose(bars[0][0] / bars[0][1], bars[1][0] / bars[1][1])
    screenshot(page, "compare-maps")
    # a head of B clicked on its map opens both head views, B at that head
    p = api.get(f"/api/atlases/{b}/headmap").json()["points"][-1]
    at = page.evaluate(f"qkatlas.current.maps[1].map.pixelOf({p['layer']}, {p['head']})")
    drawn = drawn_count(page, "compare")
    page.mouse.click(at["x"], at["y"])
    wait_drawn(page, "compare", after=drawn)
    assert page.locator(".view-compare .side-b .pair-plot canvas").count() == 1
    state = url_state(page)
    assert state["panes"] == "head" and (int(state["blayer"]), int(state["bhead"])) == (p["layer"], p["head"])


def test_compare_head_views_highlight_in_b_the_tokens_that_are_the_token_picked_in_a(page, server, api, e2e_atlases):
    a, b = e2e_atlases["text"], e2e_atlases["bert"]  # GPT-2's byte-level BPE beside BERT's WordPiece
    token = word_token(api, a, 2)
    matches = api.get("/api/compare/tokens", params={"a": a, "b": b, "token": token}).json()["matches"]
    assert matches
    open_view(page, server, "compare", atlas=a, view="compare", b=b, panes="head", token=token, layer=1, head=1)
    status = page.locator(".view-compare .pair-status")
    page.wait_for_function("document.querySelector('.view-compare .pair-status').dataset.matches !== undefined")
    assert status.get_attribute("data-matches") == ",".join(str(m["token"]) for m in matches)
    side_b = page.locator(".view-compare .pair-side.side-b")
    marked = side_b.locator(".token-strip .chip.marked").evaluate_all("els => els.map(e => Number(e.dataset.token))")
    assert marked == [m["token"] for m in matches]
    assert page.locator(".view-compare .side-a .token-strip .chip.marked").get_attribute("data-token") == str(token)
    # both plots draw their picked tokens in the match colour, under a ring
    colours = theme(page)
    for side, row in (("a", token), ("b", matches[0]["token"])):
        at = page.evaluate(f"qkatlas.current.pair.{side}.plot.pixelOf({row})")
        plot = page.locator(f".view-compare .side-{side} .pair-plot")
        box = plot.bounding_box()
        img = screen_rgb(plot)
        x, y = int(at["x"] - box["x"]), int(at["y"] - box["y"])
        patch = img[y - 1: y + 2, x - 1: x + 2].reshape(-1, 3)
        t = along(patch, colours["BG"], colours["MATCH"], tol=40)
        assert np.nanmax(t) > 0.6, side
    assert page.locator(".view-compare .side-b .pair-head .pair-controls select").first.input_value() == "1"
    screenshot(page, "compare-heads-token")
    # a token picked in B (a chip of the sentence over its plot) is mapped back to A
    other = next(int(t) for t in side_b.locator(".token-strip .chip:not(.marked):not(.special)").evaluate_all(
        "els => els.map(e => e.dataset.token)"))
    back = api.get("/api/compare/tokens", params={"a": b, "b": a, "token": other}).json()["matches"]
    side_b.locator(f".token-strip .chip[data-token='{other}']").click()
    page.wait_for_function(f"new URLSearchParams(location.search).get('token') === '{back[0]['token']}'")
    page.wait_for_function(f"document.querySelector('.view-compare .side-b .chip.marked').dataset.token === '{other}'")


@pytest.fixture(scope="module")
def two_corpora(settings, tiny_bert_atlas, tmp_path_factory):
    """tiny BERT on the default sentences (a copy) and on a corpus whose first sentence differs
    and whose next two are the default's: yields (server URL, default atlas, other atlas)."""
    data = tmp_path_factory.mktemp("two-corpora")
    shutil.copytree(tiny_bert_atlas, data / tiny_bert_atlas.name)
    default = [it.text for it in load_corpus("default", "text", limit=3).items]
    corpus = data.parent / "two-corpora.txt"
    corpus.write_text("\n".join(["A sentence the default corpus does not hold.", *default[1:3]]) + "\n")
    other = build(settings.with_(data_dir=data), "tiny-bert", str(corpus), methods=["pca"], dims=[2])
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, tiny_bert_atlas.name, other.name


def test_one_model_on_two_corpora_maps_tokens_only_where_the_sentence_is_the_same(page, two_corpora):
    url, a, b = two_corpora
    open_view(page, url, "compare", atlas=a, view="compare", b=b)
    note = page.locator(".view-compare .compare-note").inner_text()
    assert "different corpora" in note and "do not map" in note
    assert page.locator(".view-compare .side-b circle.dot").count() > 0  # both maps drawn all the same
    cols = page.evaluate(f"fetch('api/atlases/{a}/tokens?format=json').then(r => r.json())")["columns"]
    first = next(t for t, (i, s) in enumerate(zip(cols["item"], cols["special"])) if i == 0 and not s)
    same = next(t for t, (i, s) in enumerate(zip(cols["item"], cols["special"])) if i == 1 and not s)
    page.evaluate(f"qkatlas.store.set({{panes: 'head', token: {first}}})")
    status = page.locator(".view-compare .pair-status")
    page.wait_for_function("document.querySelector('.view-compare .pair-status').textContent.startsWith('Tokens do not map')")
    assert "not the same in both" in status.inner_text()
    assert page.locator(".view-compare .side-b .token-strip .chip").count() == 0
    page.evaluate(f"qkatlas.store.set({{token: {same}}})")
    page.wait_for_function("document.querySelector('.view-compare .pair-status').dataset.matches")
    expected = httpx.get(f"{url}/api/compare/tokens", params={"a": a, "b": b, "token": same}).json()["matches"]
    assert expected and status.get_attribute("data-matches") == ",".join(str(m["token"]) for m in expected)
    assert page.locator(".view-compare .side-b .token-strip .chip.marked").count() == len(expected)
    screenshot(page, "compare-two-corpora")
