// Export: download what a view shows as PNG or SVG. A view's exportTarget() names a plotly
// figure (drawn again by plotly at the plot's size), an inline SVG element, or a picture: its
// points drawn on the GPU into an image, with an SVG of what is few (labels, lines) over it.

import { h } from "./dom.js";
import { plotly } from "./plotly.js";
import { BG, SVG_EXPORT_CSS } from "./theme.js";

/** The file name (without extension) for a state: atlas, view, head and layout (the matrix is 2-D). */
export function exportName(state, layouts) {
  const matrix = state.view === "matrix";
  const layout = layouts.key(state.method, matrix ? 2 : state.dim) ?? state.method;
  return `qkatlas-${state.atlas}-${state.view}${matrix ? "" : `-L${state.layer}H${state.head}`}-${layout}`;
}

// An SVG keeps a plot's points as vector shapes up to this many. Beyond it the points are a
// picture inside the SVG (a view's picture target, or plotly's own image of its WebGL layer),
// since hundreds of thousands of SVG shapes make a file no viewer opens quickly.
export const SVG_VECTOR_POINTS = 50000;
const PNG_SCALE = 2;

/** The figure to save as SVG: scattergl traces as scatter ones when there are few enough points. */
function svgFigure(figure) {
  const gl = figure.data.filter((t) => t.type === "scattergl");
  const points = gl.reduce((n, t) => n + (t.x?.length ?? 0), 0);
  if (!gl.length || points > SVG_VECTOR_POINTS) return figure;
  return { ...figure, data: figure.data.map((t) => (t.type === "scattergl" ? { ...t, type: "scatter" } : t)) };
}

/**
 * Download target as `name.format`; false when there is nothing to save. target:
 * {figure, plotly, width, height}, {svg}, or {picture: {width, height, layers(scale) -> [SVG
 * element or {canvas, at: {x, y, w, h}}, ...] from the bottom}} (CSS pixels; a canvas drawn
 * at `scale` device pixels per CSS pixel).
 */
export async function download(target, name, format) {
  if (target?.figure) {
    const Plotly = await plotly();
    await Plotly.downloadImage(format === "svg" ? svgFigure(target.figure) : target.figure, {
      format,
      filename: name,
      width: target.width || target.plotly?.clientWidth,
      height: target.height || target.plotly?.clientHeight,
      scale: format === "png" ? PNG_SCALE : 1,
    });
    return true;
  }
  if (target?.picture) {
    await downloadPicture(target.picture, name, format);
    return true;
  }
  if (target?.svg) {
    const { width, height } = target.svg.getBoundingClientRect();
    await saveSvg(target.svg, width, height, name, format);
    return true;
  }
  return false;
}

/**
 * A picture: its layers from the bottom, each an SVG element or points drawn into a canvas
 * ({canvas, at}). In the SVG the canvases are embedded PNGs; in the PNG everything is drawn in turn.
 */
async function downloadPicture(picture, name, format) {
  const { width, height } = picture;
  const layers = picture.layers(PNG_SCALE);
  if (format === "svg") {
    const svg = h("svg", { svg: true, width, height, viewBox: `0 0 ${width} ${height}` }, h("rect", { svg: true, width, height, fill: BG }));
    for (const layer of layers) {
      if (layer.canvas) {
        const { x, y, w, h: ht } = layer.at;
        svg.append(h("image", { svg: true, x, y, width: w, height: ht, preserveAspectRatio: "none", href: layer.canvas.toDataURL("image/png") }));
      } else {
        svg.append(...layer.childNodes);
      }
    }
    save(svgUrl(svg, width, height), `${name}.svg`);
    return;
  }
  save(await rasterise(width, height, layers.map((layer) => (layer.canvas ? layer : svgUrl(layer, width, height)))), `${name}.png`);
}

/** Save an SVG element of width x height CSS pixels as .svg, or rasterised as .png. */
async function saveSvg(svg, width, height, name, format) {
  const url = svgUrl(svg, width, height);
  save(format === "svg" ? url : await rasterise(width, height, [url]), `${name}.${format}`);
}

/** An object URL of a copy of `svg` that reads as on screen without the page's stylesheet. */
function svgUrl(svg, width, height) {
  const clone = svg.cloneNode(true);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const style = document.createElementNS("http://www.w3.org/2000/svg", "style");
  style.textContent = SVG_EXPORT_CSS;
  clone.prepend(style);
  clone.setAttribute("width", width);
  clone.setAttribute("height", height);
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
  setTimeout(() => URL.revokeObjectURL(url), 5000);
  return url;
}

/** A PNG data URL at PNG_SCALE: the background, then each layer (an SVG's URL, or {canvas, at}). */
async function rasterise(width, height, layers) {
  const canvas = h("canvas", { width: Math.round(width * PNG_SCALE), height: Math.round(height * PNG_SCALE) });
  const c = canvas.getContext("2d");
  c.fillStyle = BG;
  c.fillRect(0, 0, canvas.width, canvas.height);
  c.scale(PNG_SCALE, PNG_SCALE);
  for (const layer of layers) {
    if (layer.canvas) {
      c.drawImage(layer.canvas, layer.at.x, layer.at.y, layer.at.w, layer.at.h);
      continue;
    }
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("could not draw the SVG into a PNG"));
      img.src = layer;
    });
    c.drawImage(img, 0, 0, width, height);
  }
  return canvas.toDataURL("image/png");
}

function save(href, filename) {
  const a = h("a", { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
}
