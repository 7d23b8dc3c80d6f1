// plotly.js (4.8 MB) is downloaded at once (a preload in index.html) but evaluated only when
// a view asks for it: evaluating it blocks the page for a second or more on a slow machine,
// and the matrix view (a plain canvas) draws without it. After the first view has drawn,
// the app warms it up in idle time; a "plotly:ready" event on document says when it ran.

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

/** Load plotly.js when the page is idle (so a later view finds it ready). */
export function warmPlotly() {
  const go = () => plotly().catch(() => {});
  if (window.requestIdleCallback) requestIdleCallback(go, { timeout: 1500 });
  else setTimeout(go, 200);
}
