// The first screen, while there is no atlas to show yet: what each running build is doing
// (model, stage, heads done) as GET /api/builds says, or how to build an atlas when nothing
// is being built.

import { errorBox, h } from "./dom.js";

/** One running build as a line of text: "all-MiniLM-L6-v2 …: pca 2-D, 40/72". */
export function buildLine(b) {
  return `${b.label || b.model}: ${b.stage}${b.total ? `, ${b.done}/${b.total}` : ""}`;
}

/** builds: the builds running now; error: why they could not be asked for, or null. */
export function firstScreen(builds, error) {
  if (builds.length) {
    return h("div", { class: "empty builds", role: "status" },
      h("h2", {}, builds.length === 1 ? "Building an atlas…" : `Building ${builds.length} atlases…`),
      h("p", { class: "muted" }, "The page draws the first atlas as soon as its first layout is written."),
      h("ul", { class: "build-list" }, ...builds.map(buildItem)));
  }
  return h("div", { class: "empty" },
    error ? errorBox(error, "Could not ask the server which builds are running") : null,
    h("h2", {}, "No atlases yet"),
    h("p", {}, "Build the default atlases in the background; this page draws each one as soon as its first layout is written:"),
    h("pre", {}, "qkatlas demo"),
    h("p", {}, "or build one atlas:"),
    h("pre", {}, "qkatlas build --model minilm      # all-MiniLM-L6-v2\nqkatlas build --model tiny-gpt2   # a tiny random-init GPT-2, works offline"));
}

function buildItem(b) {
  const fraction = b.total ? Math.min(1, b.done / b.total) : 0;
  return h("li", { class: "build", dataset: { atlas: b.atlas, model: b.model }, title: b.updated ? `last progress ${new Date(b.updated).toLocaleTimeString()}` : null },
    h("div", { class: "build-model" }, b.label || b.model),
    h("div", { class: "build-stage" }, h("span", { class: "spinner small" }), b.stage),
    h("div", { class: "progress" }, h("div", { class: "progress-fill", style: { width: `${Math.round(fraction * 100)}%` } })),
    h("div", { class: "build-count muted small" }, b.total ? `${b.done} of ${b.total} done` : "\u00a0"));
}
