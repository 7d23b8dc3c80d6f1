"""Front-end speed in headless Chromium: ours against baselines measured in the same run, by the
same server, in the same browser.

    python bench/frontend.py                        # a 12 x 12 atlas of 10 000 tokens (2.88M
                                                    # points in its matrix) and a head of
                                                    # 500 000 tokens (1M points)
    python bench/frontend.py --matrix 12x12x10000 --head 1x1x500000 --repeats 3

Ours: the front end in frontend/: every point of every head on one WebGL canvas (points.js),
the 2-D head view on the same renderer. Baselines:
  before        - the front end as it was before every point went on screen (git --baseline,
                  by default the parent of the commit that added frontend/js/points.js), served
                  from git by the same server: the matrix a 2 000-point sample per head stamped
                  into a 2-D canvas, the head view plotly.js (4.8 MB) with scattergl
  plotly_every  - every point of the matrix drawn by plotly's scattergl on one pair of axes (the
                  plotly way to draw them all; `before` has neither pan/zoom nor a point hover
                  in its matrix)
Figures, in ms, the median over --repeats runs, each in a fresh browser context (cold cache):
  matrix_first_paint   navigation -> the first frame with the matrix's points on screen (ours:
                       an even share of each head first when the machine draws slowly)
  matrix_every_point   navigation -> every point of every head on screen (ours, plotly_every)
  matrix_frame         animation-frame times (requestAnimationFrame deltas) during a scripted zoom
                       and pan: mean (1000 / fps), p95, max, and the gesture's length;
                       matrix_settle: gesture end -> every point on screen again
  matrix_hover         mouse move -> the point's tooltip, to the next frame
  head_cold            navigation -> a head of the matrix atlas drawn (2-D)
  big_head             navigation -> every point of the 1M-point head drawn (ours: after a first
                       frame with an even share, big_head_first_paint); big_head_frame,
                       big_head_hover as above
Prints one JSON object, with the machine, its load average and the WebGL renderer (a machine
without a GPU draws with SwiftShader, in software).

Why points.js and not a library: with --libraries DIR the same 2.88M points (as cells.js lays
them out, already in memory) are drawn by regl-scatterplot and deck.gl as well as by points.js,
each on a bare page: time to the first frame with every point, and full frames while zooming.
DIR holds ES-module bundles made with

    npm install regl-scatterplot@1.16.0 @deck.gl/core@9.4.0 @deck.gl/layers@9.4.0 esbuild@0.28.2
    npx esbuild node_modules/regl-scatterplot/dist/regl-scatterplot.esm.js --bundle --format=esm \
        --minify --outfile=DIR/regl-scatterplot.esm.js
    printf "export { Deck, OrthographicView } from '@deck.gl/core';\nexport { ScatterplotLayer } from '@deck.gl/layers';\n" > deck.js
    npx esbuild deck.js --bundle --format=esm --minify --outfile=DIR/deck.esm.js
"""

from __future__ import annotations

import argparse
import io
import json
import mimetypes
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import httpx
import numpy as np

from machine import recorded  # bench/machine.py
from qkatlas.serve import serve_in_thread
from qkatlas.settings import Settings
from synthetic import synthetic_atlas  # bench/synthetic.py

ROOT = Path(__file__).parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 300_000


# --- the baseline front end, from git ----------------------------------------------------------


def baseline_rev() -> str:
    """The commit before the one that added the WebGL renderer (HEAD while it is not committed)."""
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "frontend/js/points.js"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def frontend_at(rev: str, into: Path) -> Path:
    """frontend/ as it was at git revision `rev`, extracted under `into`."""
    tar = subprocess.run(["git", "archive", rev, "frontend"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into / "frontend"


def serve_frontend(context, root: Path) -> None:
    """Answer the page's own files (not the API, not plotly.js) from `root` in this browser context."""
    def handle(route):
        path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        if path.startswith(("api/", "vendor/", "healthz", "readyz", "docs")):
            route.continue_()
            return
        file = root / (path or "index.html")
        if not file.is_file():
            route.continue_()
            return
        route.fulfill(path=str(file), content_type=mimetypes.guess_type(file.name)[0] or "application/octet-stream")
    context.route("**/*", handle)


# --- measurements --------------------------------------------------------------------------------

FRAMES_START = """() => {
  window.__frames = []; window.__recording = true;
  let last = null;
  const tick = (t) => { if (last !== null) window.__frames.push(t - last); last = t; if (window.__recording) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
}"""

# From the first mouse move to the next frame after `selector` is shown.
LATENCY_JS = """([selector]) => {
  let t0 = null;
  window.__latency = null;
  document.addEventListener('mousemove', () => { if (t0 === null) t0 = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const el = document.querySelector(selector);
    if (t0 === null || !el || el.hidden) return;
    observer.disconnect();
    requestAnimationFrame(() => { window.__latency = performance.now() - t0; });
  });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['hidden']});
}"""

# Every point of the matrix as plotly scattergl traces (keys, then queries) on one pair of axes,
# placed by our own cells.js so that both draw the same picture; a plotly_hover shows #tooltip.
PLOTLY_EVERY_JS = """async ([atlas, method]) => {
  const t0 = performance.now();
  const cells = await import('./js/cells.js');
  const summary = await (await fetch(`api/atlases/${atlas}`)).json();
  const res = await fetch(`api/atlases/${atlas}/matrix?method=${method}&dim=2&max_points=${cells.maxPointsFor(summary)}`);
  const buf = await res.arrayBuffer();
  const n = (name) => Number(res.headers.get(name));
  const P = n('X-Points');
  const d = cells.prepare({rows: new Int32Array(buf, 0, P), coords: new Float32Array(buf, 4 * P), layers: n('X-Layers'),
                           heads: n('X-Heads'), P, missing: n('X-Missing')}, summary.tokens);
  const keys = d.cells * d.nk;
  const axis = (from, to) => {
    const x = new Float32Array(to - from), y = new Float32Array(to - from);
    for (let i = from; i < to; i++) { x[i - from] = d.xy[2 * i]; y[i - from] = d.xy[2 * i + 1]; }
    return [x, y];
  };
  const [kx, ky] = axis(0, keys);
  const [qx, qy] = axis(keys, d.cells * d.P);
  const div = document.body.appendChild(document.createElement('div'));
  div.id = 'plot';
  div.style.cssText = 'width:1000px;height:880px';
  const tip = document.body.appendChild(document.createElement('div'));
  tip.id = 'tooltip';
  tip.hidden = true;
  const marker = (color) => ({size: 2, opacity: 0.6, color});
  await Plotly.newPlot(div, [
    {type: 'scattergl', mode: 'markers', x: kx, y: ky, marker: marker('#45b4e6'), hoverinfo: 'none'},
    {type: 'scattergl', mode: 'markers', x: qx, y: qy, marker: marker('#ff9248'), hoverinfo: 'none'},
  ], {margin: {l: 0, r: 0, t: 0, b: 0}, xaxis: {range: [0, d.heads], visible: false},
      yaxis: {range: [d.layers, 0], visible: false, scaleanchor: 'x'}, showlegend: false, dragmode: 'pan', hovermode: 'closest'},
     {scrollZoom: true, displayModeBar: false});
  div.on('plotly_hover', () => { tip.hidden = false; });
  div.on('plotly_unhover', () => { tip.hidden = true; });
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {every: performance.now(), ms: performance.now() - t0, points: d.cells * d.P};
}"""


# The matrix's points drawn by one renderer on a bare page, from memory: ms to the first frame
# with every point, then full frames while the view zooms in (rAF deltas).
LIBRARY_JS = """async ([atlas, which, timeoutMs]) => {
  const cells = await import('./js/cells.js');
  const summary = await (await fetch(`api/atlases/${atlas}`)).json();
  const res = await fetch(`api/atlases/${atlas}/matrix?method=pca&dim=2&max_points=${cells.maxPointsFor(summary)}`);
  const buf = await res.arrayBuffer();
  const n = (name) => Number(res.headers.get(name));
  const P = n('X-Points');
  const d = cells.prepare({rows: new Int32Array(buf, 0, P), coords: new Float32Array(buf, 4 * P), layers: n('X-Layers'),
                           heads: n('X-Heads'), P, missing: n('X-Missing')}, summary.tokens);
  const N = d.cells * d.P, keys = d.cells * d.nk, W = 1000, H = 880;
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const host = document.body.appendChild(document.createElement('div'));
  host.style.cssText = `position:relative;width:${W}px;height:${H}px`;
  let zoom;
  const t0 = performance.now();
  const ready = (async () => {
    if (which === 'points.js') {
      const { PointCanvas } = await import('./js/points.js');
      const canvas = host.appendChild(document.createElement('canvas'));
      let view = { x: 0, y: 0, scale: Math.min(W / d.heads, H / d.layers) };
      const pc = new PointCanvas(canvas, () => ({ view }));
      pc.costPerPoint = 0; // a full frame at once, as the libraries draw
      pc.resize(W, H);
      pc.put('points', { xy: d.xy, runs: d.runs });
      const rgba = new Uint8Array(4 * N);
      for (let i = 0; i < N; i++) rgba.set(i < keys ? [69, 180, 230, 255] : [255, 146, 72, 255], 4 * i);
      pc.recolour('points', rgba);
      pc.style('points', { diameter: 2, opacity: 0.6 });
      await pc.redraw();
      zoom = (k) => { view = { ...view, scale: view.scale * k }; pc.draw(canvas, view, null, 1); };
    } else if (which === 'regl-scatterplot') {
      const { default: createScatterplot } = await import('./lib/regl-scatterplot.esm.js');
      const canvas = host.appendChild(document.createElement('canvas'));
      const x = new Float32Array(N), y = new Float32Array(N), z = new Float32Array(N);
      for (let i = 0; i < N; i++) { x[i] = d.xy[2 * i] / d.heads * 2 - 1; y[i] = 1 - d.xy[2 * i + 1] / d.layers * 2; z[i] = i < keys ? 0 : 1; }
      const sp = createScatterplot({ canvas, width: W, height: H, pointSize: 2, opacity: 0.6, backgroundColor: '#0f1216',
                                     pointColor: ['#45b4e6', '#ff9248'], colorBy: 'valueA' });
      await sp.draw({ x, y, z });
      await frame();
      zoom = (k) => sp.set({ cameraDistance: sp.get('camera').distance[0] / k });
    } else {
      const { Deck, OrthographicView, ScatterplotLayer } = await import('./lib/deck.esm.js');
      const colors = new Uint8Array(4 * N);
      for (let i = 0; i < N; i++) colors.set(i < keys ? [69, 180, 230, 153] : [255, 146, 72, 153], 4 * i);
      const positions = Float32Array.from(d.xy, (v) => v * 60);
      const layer = new ScatterplotLayer({ id: 'points', data: { length: N, attributes: {
        getPosition: { value: positions, size: 2 }, getFillColor: { value: colors, size: 4 } } },
        radiusUnits: 'pixels', getRadius: 1, stroked: false });
      let view = { target: [d.heads * 30, d.layers * 30, 0], zoom: 0 };
      let rendered;
      const first = new Promise((r) => { rendered = r; });
      const deck = new Deck({ parent: host, width: W, height: H, views: new OrthographicView({ flipY: true }),
                              viewState: view, layers: [layer], onAfterRender: () => rendered() });
      await first;
      await frame();
      zoom = (k) => { view = { ...view, zoom: view.zoom + Math.log2(k) }; deck.setProps({ viewState: view }); };
    }
  })();
  const timeout = new Promise((r) => setTimeout(() => r('timeout'), timeoutMs));
  if (await Promise.race([ready.then(() => 'ok'), timeout]) === 'timeout') return { points: N, first_paint_ms: null, timed_out_after_ms: timeoutMs };
  const first_paint_ms = performance.now() - t0;
  const deltas = [];
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    zoom(1.15);
    await frame();
    deltas.push((performance.now() - t) / 2);
  }
  deltas.sort((a, b) => a - b);
  return { points: N, first_paint_ms, full_frame_ms: deltas[deltas.length >> 1] };
}"""


def library_runs(browser, server: str, atlas: str, libraries: Path, timeout_s: float) -> dict:
    """points.js, regl-scatterplot and deck.gl drawing the same matrix (see the module's docstring)."""
    out = {}
    for which in ("points.js", "regl-scatterplot", "deck.gl"):
        context = browser.new_context(viewport=VIEWPORT)
        context.route("**/lib/*.js", lambda route: route.fulfill(
            path=str(libraries / route.request.url.rsplit("/", 1)[1]), content_type="text/javascript"))
        page = context.new_page()
        try:
            page.goto(f"{server}/healthz")
            page.set_default_timeout(1000 * (timeout_s + 120))
            out[which] = page.evaluate(LIBRARY_JS, [atlas, which, 1000 * timeout_s])
        finally:
            context.close()
    return out


def new_page(browser, frontend: Path | None = None):
    context = browser.new_context(viewport=VIEWPORT)
    if frontend is not None:
        serve_frontend(context, frontend)
    return context, context.new_page()


def drawn(page, view: str) -> dict:
    page.wait_for_function(f"Number(document.body.dataset.{view}Drawn || 0) > 0", timeout=WAIT_MS)
    return page.evaluate("qkatlas.timings")


def gesture(page, x: float, y: float) -> list[float]:
    """Zoom in at (x, y), pan by dragging, zoom out: the animation-frame deltas meanwhile (ms),
    to the frame after the last input."""
    page.mouse.move(x, y)
    page.evaluate(FRAMES_START)
    for _ in range(8):
        page.mouse.wheel(0, -120)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(x - 16 * i, y - 10 * i)
    page.mouse.up()
    page.mouse.move(x, y)
    for _ in range(8):
        page.mouse.wheel(0, 120)
    page.evaluate("new Promise((r) => requestAnimationFrame(() => { window.__recording = false; r(); }))")
    return page.evaluate("window.__frames")


def hover(page, at: dict) -> float:
    """Mouse move onto `at` (client pixels) -> the tooltip shown, in ms."""
    page.mouse.move(at["x"] - 60, at["y"] - 60)
    page.evaluate("document.getElementById('tooltip').hidden = true")
    page.evaluate(LATENCY_JS, ["#tooltip"])
    page.mouse.move(at["x"], at["y"])
    return page.wait_for_function("window.__latency", timeout=WAIT_MS).json_value()


def webgl_renderer(page) -> str:
    return page.evaluate("""() => {
        const gl = document.createElement('canvas').getContext('webgl2');
        const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
        return gl ? (ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)) : 'no WebGL 2';
    }""")


# --- the runs --------------------------------------------------------------------------------------


def matrix_runs(browser, server: str, atlas: str, layers: int, heads: int, before: Path, add) -> None:
    """The matrix: ours, the front end before, plotly's scattergl with every point."""
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/?atlas={atlas}")
        t = drawn(page, "matrix")
        add("matrix_first_paint_ms", t["matrixFirstPaint"])
        add("matrix_every_point_ms", t["matrix"])
        add("matrix_points", int(page.locator(".view-matrix").get_attribute("data-drawn")))
        view = page.locator(".view-matrix .matrix-body").bounding_box()
        x, y = view["x"] + 0.4 * min(view["width"], 800), view["y"] + 0.4 * min(view["height"], 800)
        add("matrix_frame_ms", gesture(page, x, y))
        add("matrix_settle_ms", page.evaluate("""() => { const t = performance.now();
            return qkatlas.current.points.redraw().then(() => performance.now() - t); }"""))
        page.locator(".view-matrix .toolbar button", has_text="Reset view").click()
        page.evaluate("qkatlas.current.points.redraw()")
        point = page.evaluate("""() => { const d = qkatlas.current.placed(), n = d.qx.length / (d.layers * d.heads);
            const c = Math.min(6, d.layers - 1) * d.heads + Math.min(6, d.heads - 1);
            return [d.qx[c * n], d.qy[c * n]]; }""")  # a query of L6 H6
        add("matrix_hover_ms", hover(page, page.evaluate("xy => qkatlas.current.pixelAt(xy)", point)))
    finally:
        context.close()
    context, page = new_page(browser, before)
    try:
        page.goto(f"{server}/?atlas={atlas}")
        t = drawn(page, "matrix")
        add("before_matrix_first_paint_ms", t["matrix"])
        add("before_matrix_points", int(page.locator(".view-matrix").get_attribute("data-points")))
    finally:
        context.close()
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/healthz")
        page.add_script_tag(url=f"{server}/vendor/plotly.min.js")
        r = page.evaluate(PLOTLY_EVERY_JS, [atlas, "pca"])
        add("plotly_every_matrix_every_point_ms", r["ms"])
        box = page.locator("#plot").bounding_box()
        x, y = box["x"] + 0.4 * box["width"], box["y"] + 0.4 * box["height"]
        add("plotly_every_matrix_frame_ms", gesture(page, x, y))
        page.evaluate(f"Plotly.relayout('plot', {{'xaxis.range': [0, {heads}], 'yaxis.range': [{layers}, 0]}})")
        at = page.evaluate("""(xy) => { const gd = document.getElementById('plot'), r = gd.getBoundingClientRect();
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            return {x: r.left + xa._offset + xa.l2p(xy[0]), y: r.top + ya._offset + ya.l2p(xy[1])}; }""", point)
        add("plotly_every_matrix_hover_ms", hover(page, at))
    finally:
        context.close()


def head_runs(browser, server: str, atlas: str, layer: int, head: int, before: Path, add, prefix: str,
              row: int | None = None) -> None:
    """One head view, from navigation: ours and the front end before; with `row`, also a
    scripted zoom and pan and a hover on that point."""
    for name, frontend in (("", None), ("before_", before)):
        context, page = new_page(browser, frontend)
        try:
            page.goto(f"{server}/?atlas={atlas}&view=head&layer={layer}&head={head}")
            t = drawn(page, "head")
            add(f"{name}{prefix}_ms", t["head"])
            if "headFirstPaint" in t and row is not None:
                add(f"{name}{prefix}_first_paint_ms", t["headFirstPaint"])
            if row is None:
                continue
            box = page.locator(".head-plot").bounding_box()
            add(f"{name}{prefix}_frame_ms", gesture(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
            page.locator(".view-head .toolbar button", has_text="Reset view").click()
            page.wait_for_timeout(500)
            if frontend is None:
                page.evaluate("qkatlas.current.plot.flat.redraw()")
            add(f"{name}{prefix}_hover_ms", hover(page, page.evaluate(f"qkatlas.current.plot.pixelOf({row})")))
        finally:
            context.close()


def outlying_query(server: str, atlas: str, layer: int, head: int) -> int:
    """The query farthest from the head's centre: nothing else lies under the pointer there."""
    res = httpx.get(f"{server}/api/atlases/{atlas}/heads/{layer}/{head}/points",
                    params={"method": "pca", "dim": 2, "format": "binary"}, timeout=120)
    pts = np.frombuffer(res.content, dtype="<f4").reshape(-1, 2)
    q = pts[: len(pts) // 2]
    return int(np.linalg.norm(q - pts.mean(0), axis=1).argmax())


def summarise(runs: dict[str, list]) -> dict:
    out = {}
    for key, values in runs.items():
        if key.endswith("_frame_ms"):
            # Every frame of every repeat's gesture: the mean is the gesture's time over its frames
            # (1000 / fps), the 95th percentile and the longest say how long it froze.
            deltas = np.concatenate([np.asarray(v, dtype=float) for v in values])
            out[key] = {"mean": round(float(deltas.mean()), 1), "p95": round(float(np.percentile(deltas, 95)), 1),
                        "max": round(float(deltas.max()), 1), "frames": int(len(deltas)),
                        "gesture_ms": round(float(deltas.sum()) / len(values), 1)}
        elif key.endswith("_points"):
            out[key] = values[0]
        else:
            out[key] = round(statistics.median(values), 1)
    return out


def ratio(a, b):
    """a / b rounded (a baseline over ours: above 1 means ours is faster)."""
    if isinstance(a, dict):
        a, b = a["mean"], b["mean"]
    return round(a / b, 2) if a and b else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None, help="where the synthetic atlases go (default: a temp dir)")
    ap.add_argument("--matrix", default="12x12x10000", metavar="LxHxT", help="the matrix atlas: layers x heads x tokens")
    ap.add_argument("--head", default="1x1x500000", metavar="LxHxT", help="the atlas of the big head (its L0 H0)")
    ap.add_argument("--baseline", default=None, help="git revision of the front end before (default: see above)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--libraries", type=Path, default=None, metavar="DIR",
                    help="also draw the matrix with the libraries bundled in DIR (see above)")
    ap.add_argument("--library-timeout", type=float, default=120, help="seconds a library may take to paint")
    ap.add_argument("--only-libraries", action="store_true", help="skip everything but the libraries' run")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="qkatlas-bench-"))
    data_dir = args.data_dir or tmp / "atlases"
    data_dir.mkdir(parents=True, exist_ok=True)
    rev = args.baseline or baseline_rev()
    result: dict = {"bench": "frontend", "baseline_rev": subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()}
    try:
        before = frontend_at(rev, tmp / "before")
        sizes = {}
        for name, spec in (("matrix", args.matrix), ("head", args.head)):
            layers, heads, tokens = (int(v) for v in spec.lower().split("x"))
            folder = data_dir / f"synthetic-{layers}x{heads}x{tokens}"
            sizes[name] = synthetic_atlas(folder, layers, heads, tokens, head_dim=8).name, layers, heads, tokens
        runs: dict[str, list] = {}

        def add(key, value):
            runs.setdefault(key, []).append(value)

        with recorded(result), serve_in_thread(Settings.from_env(data_dir=data_dir), lifespan="off") as server, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context, page = new_page(browser)
            page.goto(f"{server}/healthz")
            result["webgl_renderer"] = webgl_renderer(page)
            context.close()
            matrix_atlas, layers, heads, _ = sizes["matrix"]
            big_atlas = sizes["head"][0]
            big_row = outlying_query(server, big_atlas, 0, 0)
            if args.libraries:
                result["libraries"] = library_runs(browser, server, matrix_atlas, args.libraries, args.library_timeout)
            for _ in range(0 if args.only_libraries else args.repeats):
                matrix_runs(browser, server, matrix_atlas, layers, heads, before, add)
                head_runs(browser, server, matrix_atlas, layers // 2, 0, before, add, "head_cold")
                head_runs(browser, server, big_atlas, 0, 0, before, add, "big_head", row=big_row)
            browser.close()
        s = summarise(runs)
        if args.only_libraries:
            print(json.dumps(result, indent=2))
            return
        result.update({
            "matrix_atlas": {"layers": layers, "heads": heads, "tokens": sizes["matrix"][3],
                             "points": layers * heads * 2 * sizes["matrix"][3]},
            "big_head": {"tokens": sizes["head"][3], "points": 2 * sizes["head"][3]},
            "repeats": args.repeats,
            "note": "ms, median over repeats (frames: of every frame of every repeat's gesture); "
                    "*_first_paint/_every_point/head_cold/big_head: from navigation, cold cache; "
                    "before_*: the front end at baseline_rev; plotly_every_*: plotly scattergl with every point",
            **s,
            "ratios_baseline_over_ours": {
                "matrix_first_paint_vs_before": ratio(s["before_matrix_first_paint_ms"], s["matrix_first_paint_ms"]),
                "matrix_every_point_vs_plotly_every": ratio(s["plotly_every_matrix_every_point_ms"], s["matrix_every_point_ms"]),
                "matrix_frame_vs_plotly_every": ratio(s["plotly_every_matrix_frame_ms"], s["matrix_frame_ms"]),
                "matrix_hover_vs_plotly_every": ratio(s["plotly_every_matrix_hover_ms"], s["matrix_hover_ms"]),
                "head_cold_vs_before": ratio(s["before_head_cold_ms"], s["head_cold_ms"]),
                "big_head_first_paint_vs_before": ratio(s["before_big_head_ms"], s["big_head_first_paint_ms"]),
                "big_head_every_point_vs_before": ratio(s["before_big_head_ms"], s["big_head_ms"]),
                "big_head_frame_vs_before": ratio(s["before_big_head_frame_ms"], s["big_head_frame_ms"]),
                "big_head_hover_vs_before": ratio(s["before_big_head_hover_ms"], s["big_head_hover_ms"]),
            },
        })
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
