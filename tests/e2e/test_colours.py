"""Colours as the user sees them, read back from the pixels: queries are drawn in the theme's
query colour and keys in its key colour, in the matrix canvas and in the head plot (WebGL),
and colouring by position (or an image's patch row) runs along the theme's warm and cool ramps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from .pages import open_view
from .pixels import along, apart, canvas_rgb, centre_pixels, isolated, luminance, plot_pixels, screen_rgb, theme, unblend

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

MATRIX_OPACITY = 0.6  # matrix.js draws every point with this opacity
HEAD_OPACITY = 0.7  # plot.js draws a 2-D head's points with this opacity


def position_share(api, atlas: str) -> np.ndarray:
    """Each token's position in its item, 0 (first) .. 1 (last), as the colour ramp reads it."""
    tokens = api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]
    lengths = np.array(api.get(f"/api/atlases/{atlas}/items?format=json").json()["columns"]["tokens"])
    item, position = np.array(tokens["item"]), np.array(tokens["position"])
    return position / np.maximum(1, lengths[item] - 1)


def matrix_points(page) -> dict[str, np.ndarray]:
    """The matrix's points in canvas pixels and their tokens, by side (the whole matrix in view)."""
    d = page.evaluate("""() => {
        const d = qkatlas.current.placed(), c = document.querySelector('.view-matrix canvas');
        const list = (a) => Array.from(a);
        return {unit: c.width / d.heads, qx: list(d.qx), qy: list(d.qy), kx: list(d.kx), ky: list(d.ky),
                qTok: list(d.qTok), kTok: list(d.kTok)};
    }""")
    return {"query": np.c_[d["qx"], d["qy"]] * d["unit"], "key": np.c_[d["kx"], d["ky"]] * d["unit"],
            "query_tokens": np.array(d["qTok"]), "key_tokens": np.array(d["kTok"])}


def head_points(page, plot) -> tuple[np.ndarray, np.ndarray]:
    """The head plot's points in pixels of its screenshot: (queries, keys)."""
    xy = plot_pixels(page, plot)
    return xy[: len(xy) // 2], xy[len(xy) // 2:]


def assert_sides_in_theme_colours(img, queries, keys, colours, opacity, radius):
    """Every point with no point of the other side within `radius` pixels shows its side's
    colour over the background at `opacity` (or stronger, where points of its side overlap)."""
    bg = colours["BG"]
    for side, xy, others, colour in (("query", queries, keys, colours["Q"]), ("key", keys, queries, colours["K"])):
        alone = apart(xy, others, radius)
        assert alone.sum() >= 50, f"too few {side} points apart from the other side to read"
        t = along(centre_pixels(img, xy[alone], bg), bg, colour)
        share = np.mean((t >= opacity - 0.06) & (t <= 1.02))
        assert share >= 0.97, f"{side} points not in the theme's colour: {np.round(t[:20], 2)}"


def ramp_at(ramp: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The ramp's colour at each share: its stops spread evenly over 0..1, mixed linearly in RGB
    (plotly's colour scales and theme.js's rampColour both do this)."""
    at = np.linspace(0, 1, len(ramp))
    return np.stack([np.interp(share, at, ramp[:, c]) for c in range(3)], axis=1)


def assert_gradient(img, xy, others, share, ramp, bg, opacity, radius):
    """Points of xy with no other point, of xy or of the other side's `others`, within `radius`
    pixels show the ramp's colour at their position share: its first colour at the start of
    an item, its last at the end, brighter in between. Every such point is checked, wherever it
    lies on the ramp, so the check does not depend on which tokens a layout happens to keep apart."""
    alone = isolated(xy, radius, others) & ~np.isnan(share)  # NaN: a special token, drawn grey
    colours = unblend(centre_pixels(img, xy[alone], bg), bg, opacity)
    s = share[alone]
    assert len(s) >= 20 and (s <= 0.25).sum() >= 3 and (s >= 0.75).sum() >= 3, f"too few points to read: {s}"
    error = np.abs(colours - ramp_at(ramp, s)).max(axis=1)
    assert np.median(error) < 8 and np.mean(error < 16) >= 0.9, f"off the ramp: {np.round(error, 1)}"
    assert spearmanr(s, luminance(colours)).statistic > 0.9


def test_matrix_draws_queries_in_the_query_colour_and_keys_in_the_key_colour(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["text"])
    colours = theme(page)
    img = canvas_rgb(page.locator(".view-matrix canvas"))
    pts = matrix_points(page)
    assert_sides_in_theme_colours(img, pts["query"], pts["key"], colours, MATRIX_OPACITY, radius=4)


def test_matrix_coloured_by_position_runs_along_the_warm_and_cool_ramps(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    share = position_share(api, atlas)
    open_view(page, server, "matrix", atlas=atlas, color="position")
    colours = theme(page)
    img = canvas_rgb(page.locator(".view-matrix canvas"))
    pts = matrix_points(page)
    for side, other, ramp in (("query", "key", colours["WARM"]), ("key", "query", colours["COOL"])):
        assert_gradient(img, pts[side], pts[other], share[pts[f"{side}_tokens"]], ramp, colours["BG"], MATRIX_OPACITY, radius=4)


def test_head_plot_draws_queries_in_the_query_colour_and_keys_in_the_key_colour(page, server, e2e_atlases):
    open_view(page, server, "head", atlas=e2e_atlases["text"], view="head", layer=0, head=1)
    colours = theme(page)
    plot = page.locator(".head-plot")
    img = screen_rgb(plot)
    queries, keys = head_points(page, plot)
    assert_sides_in_theme_colours(img, queries, keys, colours, HEAD_OPACITY, radius=8)


def test_head_plot_coloured_by_position_runs_along_the_warm_and_cool_ramps(page, server, api, e2e_atlases):
    atlas = e2e_atlases["text"]
    share = position_share(api, atlas)
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=1, color="position")
    colours = theme(page)
    plot = page.locator(".head-plot")
    img = screen_rgb(plot)
    queries, keys = head_points(page, plot)
    for xy, others, ramp in ((queries, keys, colours["WARM"]), (keys, queries, colours["COOL"])):
        assert_gradient(img, xy, others, share, ramp, colours["BG"], HEAD_OPACITY, radius=7)


def test_image_head_plot_coloured_by_patch_row_runs_from_top_to_bottom(page, server, api, e2e_atlases):
    atlas = e2e_atlases["image"]
    grid = api.get(f"/api/atlases/{atlas}").json()["image"]["grid"]
    row = np.array(api.get(f"/api/atlases/{atlas}/tokens?format=json").json()["columns"]["row"], dtype=float)
    share = np.where(row >= 0, row / (grid - 1), np.nan)
    open_view(page, server, "head", atlas=atlas, view="head", layer=0, head=0, color="row")
    colours = theme(page)
    plot = page.locator(".head-plot")
    img = screen_rgb(plot)
    queries, keys = head_points(page, plot)
    for xy, others, ramp in ((queries, keys, colours["WARM"]), (keys, queries, colours["COOL"])):
        assert_gradient(img, xy, others, share, ramp, colours["BG"], HEAD_OPACITY, radius=7)
