"""PNG and SVG export save what the view shows: a PNG that decodes to the plot's size with the
query and key colours in it, an SVG that parses and holds every point (or every token and
attention line) in the theme's colours."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from .pages import open_view, wait_drawn
from .pixels import along, decode, download_bytes, theme

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

SVG = "{http://www.w3.org/2000/svg}"
PNG_SCALE = 2  # export.js saves PNGs at twice the plot's size


def export(page, fmt: str) -> bytes:
    with page.expect_download() as download:
        page.locator(f"#export-{fmt}").click()
    assert download.value.suggested_filename.endswith(f".{fmt}")
    return download_bytes(download.value)


def rgb_of(style: str) -> tuple[int, int, int] | None:
    """The fill of an SVG element's style attribute, as plotly writes it: fill: rgb(r, g, b)."""
    m = re.search(r"fill:\s*rgb\((\d+),\s*(\d+),\s*(\d+)\)", style or "")
    return tuple(int(v) for v in m.groups()) if m else None


def assert_png_of_plot(png: bytes, size: dict, colours: dict) -> None:
    """The PNG is the plot at PNG_SCALE times its size, and not blank: many colours, among them
    points in the query colour and in the key colour over the background."""
    img = decode(png)
    assert (img.shape[1], img.shape[0]) == (PNG_SCALE * size["width"], PNG_SCALE * size["height"])
    pixels = img.reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50
    bg = colours["BG"]
    assert np.mean(np.all(pixels == bg, axis=1)) > 0.3  # the page's background behind the points
    for side in ("Q", "K"):
        t = along(pixels, bg, colours[side])
        assert np.sum(t >= 0.55) > 200, f"no {side} points in the PNG"


def point_fills(svg: bytes) -> list[tuple[int, int, int] | None]:
    """The fill of every marker plotly drew as SVG (path.point)."""
    root = ET.fromstring(svg)
    return [rgb_of(el.get("style")) for el in root.iter(f"{SVG}path") if "point" in (el.get("class") or "").split()]


def test_head_view_exports_its_points_as_png_and_svg(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    tokens = api.get(f"/api/atlases/{atlas}").json()["tokens"]
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=1)
    colours = theme(page)
    size = page.evaluate("(({clientWidth, clientHeight}) => ({width: clientWidth, height: clientHeight}))(document.querySelector('.head-plot'))")
    assert_png_of_plot(export(page, "png"), size, colours)
    fills = point_fills(export(page, "svg"))
    q, k = (tuple(int(c) for c in colours[side]) for side in ("Q", "K"))
    assert fills.count(q) == tokens and fills.count(k) == tokens
    assert len(fills) == 2 * tokens


def test_matrix_exports_every_head_as_png_and_svg(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    open_view(page, server, "matrix", atlas=atlas)
    colours = theme(page)
    size = page.locator(".view-matrix canvas").bounding_box()
    assert_png_of_plot(export(page, "png"), size, colours)
    svg = export(page, "svg")
    fills = point_fills(svg)
    points = int(page.locator(".view-matrix").get_attribute("data-points"))
    q, k = (tuple(int(c) for c in colours[side]) for side in ("Q", "K"))
    assert fills.count(q) == fills.count(k) == points // 2
    summary = api.get(f"/api/atlases/{atlas}").json()
    labels = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert {f"L{layer} H{head}" for layer in range(summary["layers"]) for head in range(summary["heads"])} <= set(labels)


def test_sentence_view_exports_its_tokens_and_lines(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    open_view(page, server, "sentence", atlas=atlas, view="sentence", item=2, layer=1, head=1)
    tokens = api.get(f"/api/atlases/{atlas}/items/2/attention", params={"layer": 1, "head": 1}).json()["tokens"]
    on_screen = page.locator("svg.attn-lines g.lines line").count()
    root = ET.fromstring(export(page, "svg"))
    shown = [el.text for el in root.iter(f"{SVG}text") if "tok-q" in (el.get("class") or "")]
    assert shown == [re.sub(r"^[ Ġ▁]+", "", t["text"]) or "␣" for t in tokens]
    assert len(list(root.iter(f"{SVG}line"))) == on_screen > 0
    assert root.find(f"{SVG}style") is not None  # it reads as on screen without the page's CSS
    png = decode(export(page, "png"))
    box = page.locator("svg.attn-lines").bounding_box()
    assert png.shape[1] == pytest.approx(PNG_SCALE * box["width"], abs=1)
    assert png.shape[0] == pytest.approx(PNG_SCALE * box["height"], abs=1)
    assert len(np.unique(png.reshape(-1, 3), axis=0)) > 20


def test_a_matrix_of_many_points_exports_a_picture_of_them_under_vector_labels(page, gqa_server):
    """Beyond export.js's limit on vector points the points are one picture (in the SVG an
    embedded PNG), the whole matrix unzoomed even when only part of it is in view; the head
    labels stay text."""
    url, atlas = gqa_server
    open_view(page, url, "matrix", atlas=atlas)
    colours = theme(page)
    points = int(page.locator(".view-matrix").get_attribute("data-points"))
    assert points > page.evaluate("import('./js/export.js').then(m => m.SVG_VECTOR_POINTS)")
    layers, heads, base = page.evaluate("[qkatlas.current.data.layers, qkatlas.current.data.heads, qkatlas.current.base]")
    assert_png_of_plot(export(page, "png"), {"width": base * heads, "height": base * layers}, colours)
    root = ET.fromstring(export(page, "svg"))
    images = list(root.iter(f"{SVG}image"))
    assert len(images) == 1 and images[0].get("href").startswith("data:image/png;base64,")
    assert point_fills(ET.tostring(root)) == []  # no point as a vector
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {f"L{layer} H{head}" for layer in range(layers) for head in range(heads)} <= labels


def test_a_head_of_many_points_exports_a_picture_with_its_axes(page, big_head_server):
    url, atlas = big_head_server
    open_view(page, url, atlas=atlas, view="head", layer=0, head=0)
    wait_drawn(page, "head", timeout=180_000)
    colours = theme(page)
    size = page.evaluate("(({clientWidth, clientHeight}) => ({width: clientWidth, height: clientHeight}))(document.querySelector('.head-plot'))")
    assert_png_of_plot(export(page, "png"), size, colours)
    root = ET.fromstring(export(page, "svg"))
    assert len(list(root.iter(f"{SVG}image"))) == 1
    assert len([t for t in root.iter(f"{SVG}text") if t.text]) >= 4  # the tick labels
