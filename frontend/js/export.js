// Export: download what a view shows as PNG or SVG. A view's exportTarget() names either a
// plotly figure (drawn again by plotly at the plot's size) or an inline SVG element.

import { h } from "./dom.js";
import { plotly } from "./plotly.js";
import { BG, SVG_EXPORT_CSS } from "./theme.js";

/** The file name (without extension) for a state: atlas, view, head and layout (the matrix is 2-D). */
export function exportName(state, layouts) {
  const matrix = state.view === "matrix";
  const layout = layouts.key(state.method, matrix ? 2 : state.dim) ?? state.method;
  return `qkatlas-${state.atlas}-${state.view}${matrix ? "" : `-L${state.layer}H${state.head}`}-${layout}`;
}

// An SVG keeps a plot's points as vector shapes up to this many: its WebGL traces are drawn
// again as SVG scatter traces. Beyond it plotly embeds the WebGL layer as an image, since
// hundreds of thousands of SVG shapes make a file no viewer opens quickly.
const SVG_VECTOR_POINTS = 50000;

/** The figure to save as SVG: scattergl traces as scatter ones when there are few enough points. */
function svgFigure(figure) {
  const gl = figure.data.filter((t) => t.type === "scattergl");
  const points = gl.reduce((n, t) => n + (t.x?.length ?? 0), 0);
  if (!gl.length || points > SVG_VECTOR_POINTS) return figure;
  return { ...figure, data: figure.data.map((t) => (t.type === "scattergl" ? { ...t, type: "scatter" } : t)) };
}

/** Download target ({figure, plotly, width, height} or {svg}) as `name.format`; false when there is nothing to save. */
export async function download(target, name, format) {
  if (target?.figure) {
    const Plotly = await plotly();
    await Plotly.downloadImage(format === "svg" ? svgFigure(target.figure) : target.figure, {
      format,
      filename: name,
      width: target.width || target.plotly?.clientWidth,
      height: target.height || target.plotly?.clientHeight,
      scale: format === "png" ? 2 : 1,
    });
    return true;
  }
  if (target?.svg) {
    downloadSvg(target.svg, name, format);
    return true;
  }
  return false;
}

/** Save an inline SVG as .svg, or rasterised as .png. */
function downloadSvg(svg, name, format) {
  const clone = svg.cloneNode(true);
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const style = document.createElementNS("http://www.w3.org/2000/svg", "style");
  style.textContent = SVG_EXPORT_CSS;
  clone.prepend(style);
  const { width, height } = svg.getBoundingClientRect();
  clone.setAttribute("width", width);
  clone.setAttribute("height", height);
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
  const save = (href) => {
    const a = h("a", { href, download: `${name}.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
  };
  if (format === "svg") {
    save(url);
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    return;
  }
  const img = new Image();
  img.onload = () => {
    const canvas = h("canvas", { width: width * 2, height: height * 2 });
    const c = canvas.getContext("2d");
    c.fillStyle = BG;
    c.fillRect(0, 0, canvas.width, canvas.height);
    c.scale(2, 2);
    c.drawImage(img, 0, 0);
    save(canvas.toDataURL("image/png"));
    URL.revokeObjectURL(url);
  };
  img.src = url;
}
