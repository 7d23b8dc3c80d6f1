"""Reading what the page drew, pixel by pixel: the theme's colours (from js/theme.js itself),
images from a canvas, a screenshot or a download, and where a pixel lies between the page
background and a colour drawn over it with some opacity."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image


def theme(page) -> dict[str, np.ndarray]:
    """Every colour js/theme.js exports, as RGB: single colours (3,), ramps (stops, 3)."""
    named = page.evaluate("""async () => {
        const t = await import('./js/theme.js');
        const rgb = (c) => t.parseColour(c).slice(0, 3);
        const out = {};
        for (const [name, v] of Object.entries(t)) {
            if (typeof v === 'string' && v.startsWith('#')) out[name] = rgb(v);
            else if (Array.isArray(v) && v.every((c) => typeof c === 'string')) out[name] = v.map(rgb);
        }
        return out;
    }""")
    return {name: np.array(v, dtype=float) for name, v in named.items()}


def decode(png: bytes) -> np.ndarray:
    """PNG bytes -> (height, width, 3) RGB as float."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


def canvas_rgb(locator) -> np.ndarray:
    """A 2-D canvas's pixels at its own resolution."""
    url = locator.evaluate("c => c.toDataURL('image/png')")
    return decode(base64.b64decode(url.split(",", 1)[1]))


def screen_rgb(locator) -> np.ndarray:
    """What an element shows on screen, WebGL included, in pixels of its bounding box."""
    return decode(locator.screenshot())


def plot_pixels(page, locator, coords: list | None = None) -> np.ndarray:
    """Where the plot of the view on screen (plot.js) draws layout coordinates `coords`, or
    every point (rows: queries, then keys), in pixels of `locator`'s screenshot. 2-D only."""
    xy = page.evaluate("""coords => {
        const p = qkatlas.current.plot;
        const at = coords ? coords.map((c) => p.pixelAt(c)) : Array.from({length: 2 * p.pts.T}, (_, r) => p.pixelOf(r));
        return at.map(({x, y}) => [x, y]);
    }""", coords)
    box = locator.bounding_box()
    return np.array(xy) - [box["x"], box["y"]]


def download_bytes(download) -> bytes:
    return Path(download.path()).read_bytes()


def along(pixels: np.ndarray, bg: np.ndarray, colour: np.ndarray, tol: float = 8.0) -> np.ndarray:
    """How far each pixel (..., 3) lies from `bg` towards `colour` (0: background, 1: the
    colour itself), or NaN where it lies off that line by more than `tol` (another colour)."""
    v = colour - bg
    t = ((pixels - bg) @ v) / (v @ v)
    off = np.linalg.norm(pixels - bg - t[..., None] * v, axis=-1)
    return np.where(off <= tol, t, np.nan)


def centre_pixels(img: np.ndarray, xy: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """For points drawn centred at xy (n, 2) image pixels: the pixel of their 3x3 neighbourhood
    that differs most from the background, i.e. the one a point covers fully."""
    h, w, _ = img.shape
    out = np.zeros((len(xy), 3))
    for i, (x, y) in enumerate(np.floor(xy).astype(int)):
        patch = img[max(0, y - 1): min(h, y + 2), max(0, x - 1): min(w, x + 2)].reshape(-1, 3)
        out[i] = patch[np.linalg.norm(patch - bg, axis=1).argmax()]
    return out


def pixels_at(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """The pixels under points xy (n, 2) of the image."""
    x, y = np.floor(xy).astype(int).T
    return img[y, x]


def apart(xy: np.ndarray, others: np.ndarray, radius: float) -> np.ndarray:
    """Which points of xy (n, 2) have no point of `others` (m, 2) within `radius` pixels."""
    return np.linalg.norm(xy[:, None, :] - others[None, :, :], axis=-1).min(axis=1) > radius


def isolated(xy: np.ndarray, radius: float, others: np.ndarray) -> np.ndarray:
    """Which points of xy have no other point of xy, nor any of `others`, within `radius`."""
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return (d.min(axis=1) > radius) & apart(xy, others, radius)


def unblend(pixels: np.ndarray, bg: np.ndarray, opacity: float) -> np.ndarray:
    """The colour that, drawn with `opacity` over `bg`, gives `pixels`."""
    return bg + (pixels - bg) / opacity


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def matrix_cells(page) -> dict[tuple[int, int], np.ndarray]:
    """Every cell of the matrix view as drawn, (layer, head) -> its pixels (h, w, 3): the matrix
    body is scrolled through from top to bottom (its canvas covers only the part in view), and
    each cell is read whole from a frame that drew every point in view."""
    body = page.locator(".view-matrix .matrix-body")
    canvas = page.locator(".view-matrix canvas")
    cells: dict[tuple[int, int], np.ndarray] = {}
    top = 0
    while True:
        body.evaluate("(e, top) => e.scrollTo(0, top)", top)
        page.evaluate("qkatlas.current.points.redraw()")  # resolves once every point in view is on screen
        img = canvas_rgb(canvas)
        for r in page.evaluate("qkatlas.current.cellRects()"):
            x0, y0, x1, y1 = (int(round(r[k])) for k in ("x0", "y0", "x1", "y1"))
            if x0 >= 0 and y0 >= 0 and x1 <= img.shape[1] and y1 <= img.shape[0]:
                cells.setdefault((r["layer"], r["head"]), img[y0:y1, x0:x1])
        scroll = body.evaluate("e => [e.scrollTop, e.scrollHeight - e.clientHeight, e.clientHeight]")
        if scroll[0] >= scroll[1]:
            break
        top = scroll[0] + max(1, scroll[2] // 2)
    return cells


def warm_and_cool(pixels: np.ndarray) -> tuple[int, int]:
    """How many pixels are warm (query colours: red over blue) and cool (key colours)."""
    return int(np.sum(pixels[..., 0] > pixels[..., 2] + 60)), int(np.sum(pixels[..., 2] > pixels[..., 0] + 60))
