// plotly.js (4.8 MB) is loaded only when something asks for it: a 3-D head plot, or an export
// (a figure saved as vectors). Evaluating it blocks the page for a second or more on a slow
// machine, and the matrix and the 2-D head plot draw on their own WebGL canvas (points.js)
// without it. A "plotly:ready" event on document says when it ran.

let ready = null;

/** Resolves to window.Plotly once plotly.js has run. */
export function plotly() {
  if (!ready) {
    ready = new Promise((resolve, reject) => {
      if (window.Plotly) {
        resolve(window.Plotly);
        return;
      }
      const script = document.createElement("script");
      script.src = new URL("vendor/plotly.min.js", document.baseURI).href;
      script.onload = () => {
        document.dispatchEvent(new CustomEvent("plotly:ready", { detail: { at: performance.now() } }));
        resolve(window.Plotly);
      };
      script.onerror = () => reject(new Error("could not load plotly.js from vendor/plotly.min.js"));
      document.head.append(script);
    });
  }
  return ready;
}
