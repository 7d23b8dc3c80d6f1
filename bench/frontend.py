"""Front-end speed in headless Chromium: time from navigation to the plot drawn, for the
matrix view (every head) and a head view, plus hover and click latency, against baselines
drawn in the same run and the same browser.

    python bench/frontend.py                           # MiniLM on the default corpus, built
                                                       # with `qkatlas build` if missing
    python bench/frontend.py --data-dir DIR --atlas ID # an atlas you have
    python bench/frontend.py --synthetic 12x12x10000   # a synthetic 12 x 12 atlas with
                                                       # 10 000 tokens (20 000 points per head)

Ours: the app itself (matrix stamped into one canvas from the binary matrix endpoint; head
view as plotly scattergl from binary points). Baselines, each on a page of the same server
that loads plotly.js and draws the same data:
  matrix_subplots - one plotly figure with a subplot (axes pair) per head, scattergl traces
  matrix_svg      - the same subplots with SVG 'scatter' traces
  head_json_svg   - one head fetched as JSON, drawn as SVG 'scatter' (from navigation, and
                    head_switch_json_svg: fetch + draw once plotly.js is loaded)
  head_json_gl    - the same with scattergl
Every number is the median over --repeats runs, each in a fresh browser context (cold
cache). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from qkatlas.settings import Settings
from qkatlas.serve import serve_in_thread
from qkatlas.store import atlas_id
from synthetic import synthetic_atlas  # bench/synthetic.py

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}


# --- atlases ----------------------------------------------------------------------------------


def minilm_atlas(data_dir: Path) -> str:
    name = atlas_id("minilm", "default")
    if not (data_dir / name / "manifest.json").exists():
        subprocess.run([sys.executable, "-c", "from qkatlas.cli import main; main()", "build", "--model", "minilm",
                        "--corpus", "default", "--methods", "pca", "--data-dir", str(data_dir)], check=True,
                       stdout=subprocess.DEVNULL)
    return name


def synthetic(data_dir: Path, layers: int, heads: int, tokens: int) -> str:
    return synthetic_atlas(data_dir / f"synthetic-{layers}x{heads}x{tokens}", layers, heads, tokens, head_dim=8).name


# --- server -----------------------------------------------------------------------------------


# --- measurements (each returns milliseconds) ---------------------------------------------------

# Draw the matrix the plotly way: one subplot per head, two traces per head.
SUBPLOTS_JS = """async ([url, type]) => {
  const res = await fetch(url);
  const buf = await res.arrayBuffer();
  const P = +res.headers.get('X-Points'), L = +res.headers.get('X-Layers'), H = +res.headers.get('X-Heads');
  const T = +res.headers.get('X-Tokens');
  const rows = new Int32Array(buf, 0, P), xy = new Float32Array(buf, 4 * P);
  const data = [], layout = {width: 1100, height: Math.round(1100 * L / H), showlegend: false,
    margin: {l: 0, r: 0, t: 0, b: 0}, hovermode: false};
  for (let c = 0; c < L * H; c++) {
    const l = Math.floor(c / H), h = c % H, ax = c === 0 ? '' : String(c + 1);
    layout['xaxis' + ax] = {domain: [h / H + 0.002, (h + 1) / H - 0.002], visible: false, anchor: 'y' + ax};
    layout['yaxis' + ax] = {domain: [1 - (l + 1) / L + 0.002, 1 - l / L - 0.002], visible: false, anchor: 'x' + ax};
    for (const key of [false, true]) {
      const x = [], y = [];
      for (let p = 0; p < P; p++) if ((rows[p] >= T) === key) { x.push(xy[(c * P + p) * 2]); y.push(xy[(c * P + p) * 2 + 1]); }
      data.push({type, mode: 'markers', x, y, xaxis: 'x' + ax, yaxis: 'y' + ax, hoverinfo: 'skip',
                 marker: {size: 2, opacity: 0.6, color: key ? '#45b4e6' : '#ff9248'}});
    }
  }
  await Plotly.newPlot(document.body.appendChild(document.createElement('div')), data, layout, {staticPlot: true});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now();
}"""

HEAD_JSON_JS = """async ([url, type]) => {
  const t0 = performance.now();
  const body = await (await fetch(url)).json();
  const n = body.shape[0] / 2, pts = body.points;
  const trace = (from, color) => ({type, mode: 'markers', x: pts.slice(from, from + n).map(p => p[0]),
    y: pts.slice(from, from + n).map(p => p[1]), marker: {size: 3, color}, hoverinfo: 'text',
    text: pts.slice(from, from + n).map((_, i) => 'token ' + i)});
  const div = document.body.appendChild(document.createElement('div'));
  div.style.cssText = 'width:1100px;height:800px';
  await Plotly.newPlot(div, [trace(n, '#45b4e6'), trace(0, '#ff9248')], {hovermode: 'closest'});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now(), performance.now() - t0];
}"""

# Hover / click latency inside the app: from the input event to the next frame after the
# tooltip (or the neighbours list) is in the page.
LATENCY_JS = """([selector]) => {
  let t0 = null;
  window.__latency = null;
  const start = () => { if (t0 === null) t0 = performance.now(); };
  document.addEventListener('mousemove', start, {capture: true, once: true});
  document.addEventListener('mousedown', start, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const el = document.querySelector(selector);
    if (t0 === null || !el || el.hidden) return;
    observer.disconnect();
    requestAnimationFrame(() => { window.__latency = performance.now() - t0; });
  });
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['hidden']});
}"""


def new_page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    return context, context.new_page()


def app_timing(browser, url: str, view: str) -> dict:
    context, page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_function(f"Number(document.body.dataset.{view}Drawn || 0) > 0", timeout=120_000)
        return page.evaluate("qkatlas.timings")
    finally:
        context.close()


def baseline(browser, server: str, script: str, args) -> float:
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/healthz")
        page.add_script_tag(url=f"{server}/vendor/plotly.min.js")
        return page.evaluate(script, args)
    finally:
        context.close()


def interactions(browser, server: str, atlas: str, layer: int, head: int, token: int) -> dict:
    """In one page: matrix -> click a head (head drawn), hover a point, click it."""
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/?atlas={atlas}")
        page.wait_for_function("document.body.dataset.matrixDrawn > 0", timeout=120_000)
        page.wait_for_function("qkatlas.timings.plotlyReady > 0", timeout=120_000)
        switch = page.evaluate(f"""() => new Promise(resolve => {{
            const t0 = performance.now();
            const n = Number(document.body.dataset.headDrawn || 0);
            document.querySelector(".cell[data-layer='{layer}'][data-head='{head}']").click();
            const wait = () => Number(document.body.dataset.headDrawn || 0) > n ? resolve(performance.now() - t0) : requestAnimationFrame(wait);
            wait();
        }})""")
        p = page.evaluate(f"qkatlas.current.plot.pixelOf({token})")
        page.mouse.move(p["x"] - 30, p["y"] - 30)
        page.evaluate("document.getElementById('tooltip').hidden = true")
        page.evaluate(LATENCY_JS, ["#tooltip"])
        page.mouse.move(p["x"], p["y"])
        hover_ms = page.wait_for_function("window.__latency").json_value()
        page.evaluate(LATENCY_JS, [".selection ol.neighbours li"])
        page.mouse.click(p["x"], p["y"])
        click_ms = page.wait_for_function("window.__latency").json_value()
        return {"head_switch_ms": switch, "hover_ms": hover_ms, "click_to_neighbours_ms": click_ms}
    finally:
        context.close()


def median(values):
    return round(statistics.median(values), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None, help="atlas folder (default: a temp dir)")
    ap.add_argument("--atlas", default=None, help="atlas id in --data-dir (default: MiniLM on the default corpus)")
    ap.add_argument("--synthetic", default=None, metavar="LxHxT", help="use a synthetic atlas, e.g. 12x12x10000")
    ap.add_argument("--layer", type=int, default=None, help="head shown in the head view (default: the middle one)")
    ap.add_argument("--head", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-svg", action="store_true", help="skip the (slow) SVG matrix baseline")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="qkatlas-bench-"))
        data_dir = tmp
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.synthetic:
            layers, heads, tokens = (int(x) for x in args.synthetic.lower().split("x"))
            atlas = synthetic(data_dir, layers, heads, tokens)
        else:
            atlas = args.atlas or minilm_atlas(data_dir)
        with serve_in_thread(Settings.from_env(data_dir=data_dir), lifespan="off") as server, sync_playwright() as p:
            import httpx

            summary = httpx.get(f"{server}/api/atlases/{atlas}").json()
            layer = args.layer if args.layer is not None else summary["layers"] // 2
            head = args.head
            points = httpx.get(f"{server}/api/atlases/{atlas}/heads/{layer}/{head}/points?format=json").json()["points"]
            pts = np.array(points)
            n = len(pts) // 2
            token = int(np.linalg.norm(pts[:n] - pts.mean(0), axis=1).argmax())  # an outlying query: easy to hover
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            max_points = browser.new_page()
            max_points.goto(f"{server}/?atlas={atlas}")
            max_points.wait_for_function("document.body.dataset.matrixDrawn > 0", timeout=120_000)
            mp = max_points.evaluate("import('./js/matrix.js').then(m => m.maxPointsFor(qkatlas.ctx.atlas))")
            max_points.close()
            matrix_url = f"/api/atlases/{atlas}/matrix?method=pca&dim=2&max_points={mp}"
            points_url = f"/api/atlases/{atlas}/heads/{layer}/{head}/points?method=pca&dim=2&format=json"
            runs: dict[str, list[float]] = {}

            def add(key, value):
                runs.setdefault(key, []).append(value)

            for _ in range(args.repeats):
                t = app_timing(browser, f"{server}/?atlas={atlas}", "matrix")
                add("matrix_ms", t["matrix"])
                t = app_timing(browser, f"{server}/?atlas={atlas}&view=head&layer={layer}&head={head}", "head")
                add("head_ms", t["head"])
                add("plotly_eval_ms", t.get("plotlyReady", float("nan")))
                for k, v in interactions(browser, server, atlas, layer, head, token).items():
                    add(k, v)
                add("baseline_matrix_subplots_ms", baseline(browser, server, SUBPLOTS_JS, [matrix_url, "scattergl"]))
                for name, kind in (("svg", "scatter"), ("gl", "scattergl")):
                    since_navigation, draw_only = baseline(browser, server, HEAD_JSON_JS, [points_url, kind])
                    add(f"baseline_head_json_{name}_ms", since_navigation)
                    add(f"baseline_head_switch_json_{name}_ms", draw_only)
            if not args.no_svg:  # once: it is slow
                add("baseline_matrix_svg_ms", baseline(browser, server, SUBPLOTS_JS, [matrix_url, "scatter"]))
            browser.close()
        result = {k: median(v) for k, v in runs.items()}
        result["ratios"] = {
            "matrix_subplots_over_ours": round(result["baseline_matrix_subplots_ms"] / result["matrix_ms"], 2),
            "head_json_svg_over_ours": round(result["baseline_head_json_svg_ms"] / result["head_ms"], 2),
            "head_json_gl_over_ours": round(result["baseline_head_json_gl_ms"] / result["head_ms"], 2),
            "head_switch_json_svg_over_ours": round(result["baseline_head_switch_json_svg_ms"] / result["head_switch_ms"], 2),
            "head_switch_json_gl_over_ours": round(result["baseline_head_switch_json_gl_ms"] / result["head_switch_ms"], 2),
        }
        if "baseline_matrix_svg_ms" in result:
            result["ratios"]["matrix_svg_over_ours"] = round(result["baseline_matrix_svg_ms"] / result["matrix_ms"], 2)
        print(json.dumps({
            "bench": "frontend",
            "atlas": atlas,
            "layers": summary["layers"], "heads": summary["heads"], "tokens": summary["tokens"],
            "points_per_head": 2 * summary["tokens"], "matrix_points_per_head": mp,
            "head": [layer, head], "repeats": args.repeats,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
            "note": "ms, median. matrix/head/baseline_*_ms: navigation start to drawn (two frames after drawing), "
                    "cold cache; head_switch: matrix cell clicked to head drawn (plotly.js loaded), against "
                    "baseline_head_switch_*: fetch + draw with plotly.js loaded; hover: mouse move to tooltip; "
                    "click: mouse down to neighbours listed (each to the next frame); plotly_eval_ms: when plotly.js finished evaluating",
            **result,
        }, indent=2))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
