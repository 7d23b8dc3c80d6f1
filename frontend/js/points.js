// Points on one WebGL 2 canvas: the renderer under the matrix view (every point of every head)
// and the 2-D head plot. A view hands it sets of points as typed arrays in world units (x right,
// y down) in the order they are drawn, and a view {x, y, scale}; the canvas shows the world
// from (x, y) at `scale` CSS pixels per unit. A frame draws every point when the view rests;
// while it moves, and the machine has shown that it cannot draw them all in a frame (software
// WebGL), an even share of each run of points, then all of them once the view rests again.

const VS = `#version 300 es
precision highp float;
layout(location = 0) in vec2 xy;
layout(location = 1) in vec4 rgba;
uniform vec3 view;      // world x, y at the canvas's top-left; device pixels per world unit
uniform vec2 canvas;    // device pixels
uniform float size;     // side of the square a point may cover, device pixels
uniform vec4 tint;      // alpha > 0: every point in this colour
out vec4 colour;
flat out vec2 centre;   // in window pixels (origin bottom-left, as gl_FragCoord)
void main() {
  vec2 px = (xy - view.xy) * view.z;
  centre = vec2(px.x, canvas.y - px.y);
  gl_Position = vec4(px.x / canvas.x * 2.0 - 1.0, 1.0 - px.y / canvas.y * 2.0, 0.0, 1.0);
  gl_PointSize = size;
  colour = tint.a > 0.0 ? tint : rgba;
}`;

// A disc of `radius` device pixels with a one-pixel soft edge, its coverage computed from the
// true centre (as the canvas stamps of the earlier matrix did), optionally ringed by `outline`.
const FS = `#version 300 es
precision highp float;
in vec4 colour;
flat in vec2 centre;
uniform float radius;
uniform float opacity;
uniform vec4 outline;
uniform float outlineWidth;
out vec4 fragment;
void main() {
  float d = length(gl_FragCoord.xy - centre);
  float cover = clamp(radius + 0.5 - d, 0.0, 1.0);
  if (cover <= 0.0) discard;
  vec3 rgb = colour.rgb;
  if (outlineWidth > 0.0) rgb = mix(rgb, outline.rgb, clamp(d - (radius - outlineWidth) + 0.5, 0.0, 1.0));
  float a = colour.a * opacity * cover;
  fragment = vec4(rgb * a, a); // premultiplied: the same over an opaque background or a transparent canvas
}`;

const MOVING_BUDGET_MS = 25; // a frame while the view moves draws what the machine draws in this time
const FIRST_FRAME_POINTS = 300000; // the first frame of a new picture, before the cost is known
const SETTLE_MS = 160; // the view rests this long after the last move: draw every point
const MIN_SHARE = 1 / 256;

/** A permutation of 0..n-1 whose every prefix is an even sample: 0, s, 2s, ..., 1, 1+s, ... */
export function evenOrder(n, stride = 64) {
  const out = new Uint32Array(n);
  let at = 0;
  for (let r = 0; r < stride; r++) for (let i = r; i < n; i += stride) out[at++] = i;
  return out;
}

export class PointCanvas {
  /**
   * canvas: an HTMLCanvasElement; frame(): {view: {x, y, scale}, runs: (set name) -> visible
   * runs or null for all}; transparent: the canvas shows what lies under it (else the
   * background colour, opaque).
   */
  constructor(canvas, frame, { transparent = false } = {}) {
    this.canvas = canvas;
    this.frameSpec = frame;
    this.transparent = transparent;
    const gl = canvas.getContext("webgl2", { alpha: transparent, premultipliedAlpha: true, antialias: false, depth: false, stencil: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("This browser offers no WebGL 2, which qkatlas needs to draw points (is hardware acceleration off?)");
    this.gl = gl;
    this.program = program(gl, VS, FS);
    this.u = {};
    for (const name of ["view", "canvas", "size", "tint", "radius", "opacity", "outline", "outlineWidth"]) {
      this.u[name] = gl.getUniformLocation(this.program, name);
    }
    this.sets = new Map(); // name -> {xy, rgba (GPU buffers), n, tinted, runs}
    this.styles = new Map(); // name -> how that set is drawn
    this.order = []; // set names in drawing order
    this.cssWidth = 1;
    this.cssHeight = 1;
    this.costPerPoint = null; // ms of one frame per point drawn, measured on this machine
    this.moving = 0; // when the view last moved (performance.now())
    this.pending = null;
    this.settleTimer = null;
    this.full = false; // the last frame drew every visible point
    this.waiters = []; // redraw() promises, resolved when every point is on screen
    this.onPainted = null; // ({drawn, full}) after each frame reached the screen
    this.background = [0, 0, 0];
  }

  /** The colour an opaque canvas is cleared to: [r, g, b] in 0..1 (theme.glColour). */
  setBackground([r, g, b]) {
    this.background = [r, g, b];
  }

  /** Size the canvas in CSS pixels (its buffer in device pixels, at most twice as many). */
  resize(width, height) {
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    this.cssWidth = Math.max(1, width);
    this.cssHeight = Math.max(1, height);
    this.dpr = dpr;
    const w = Math.max(1, Math.round(this.cssWidth * dpr));
    const hgt = Math.max(1, Math.round(this.cssHeight * dpr));
    if (this.canvas.width !== w) this.canvas.width = w;
    if (this.canvas.height !== hgt) this.canvas.height = hgt;
    this.canvas.style.width = `${this.cssWidth}px`;
    this.canvas.style.height = `${this.cssHeight}px`;
  }

  /**
   * Put a set of points on the GPU. xy: Float32Array (2 per point, world units); rgba:
   * Uint8Array (4 per point) or null for a tinted set; runs: [[first, count], ...] that tile
   * the set in drawing order, each an even order (evenOrder) so that a share of it is its
   * prefix. Sets are drawn in the order they were first put.
   */
  put(name, { xy, rgba = null, runs = null }) {
    const gl = this.gl;
    let set = this.sets.get(name);
    if (!set) {
      set = { xy: gl.createBuffer(), rgba: gl.createBuffer(), n: 0, runs: null };
      this.sets.set(name, set);
      this.order.push(name);
    }
    const n = xy.length / 2;
    gl.bindBuffer(gl.ARRAY_BUFFER, set.xy);
    gl.bufferData(gl.ARRAY_BUFFER, xy, gl.STATIC_DRAW);
    if (rgba) {
      gl.bindBuffer(gl.ARRAY_BUFFER, set.rgba);
      gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.STATIC_DRAW);
    }
    set.n = n;
    set.tinted = !rgba;
    set.runs = runs || [[0, n]];
    this.full = false;
  }

  /** Replace the colours of a set (same points, same order). */
  recolour(name, rgba) {
    const set = this.sets.get(name);
    if (!set) return;
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, set.rgba);
    gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.STATIC_DRAW);
    set.tinted = false;
    this.full = false;
  }

  /**
   * How a set is drawn (kept for a set put later): {diameter (CSS px), opacity, tint: [r, g,
   * b, a] in 0..1, outline: [r, g, b], outlineWidth (CSS px), hidden}.
   */
  style(name, style) {
    this.styles.set(name, { ...this.styles.get(name), ...style });
  }

  drop(name) {
    const set = this.sets.get(name);
    if (!set) return;
    this.gl.deleteBuffer(set.xy);
    this.gl.deleteBuffer(set.rgba);
    this.sets.delete(name);
    this.order = this.order.filter((n) => n !== name);
  }

  /** Points in the sets' visible runs (what a full frame draws). */
  visiblePoints(spec) {
    let total = 0;
    for (const name of this.order) {
      const set = this.sets.get(name);
      if (this.styles.get(name)?.hidden) continue;
      for (const [, count] of spec.runs?.(name) ?? set.runs) total += count;
    }
    return total;
  }

  /**
   * Ask for a frame. moving: the view is being panned or zoomed (a share of the points may be
   * drawn now, every point once it rests). Resolves with the points drawn when a frame with
   * every visible point is on screen.
   */
  redraw({ moving = false } = {}) {
    if (moving) this.moving = performance.now();
    const done = new Promise((resolve) => this.waiters.push(resolve));
    this.schedule();
    return done;
  }

  schedule() {
    clearTimeout(this.settleTimer);
    if (!this.pending) this.pending = requestAnimationFrame(() => this.frame());
  }

  /** The share of the visible points this frame draws: all, unless the view moves on a slow machine. */
  share(visible) {
    if (performance.now() - this.moving < SETTLE_MS) {
      return this.costPerPoint === null ? 1 : MOVING_BUDGET_MS / Math.max(1e-9, this.costPerPoint * visible);
    }
    // The first picture on a machine of unknown speed: an even share at once, then every point.
    return this.costPerPoint === null ? FIRST_FRAME_POINTS / Math.max(1, visible) : 1;
  }

  frame() {
    this.pending = null;
    const spec = this.frameSpec();
    if (!spec) {
      this.release(0);
      return;
    }
    const share = Math.max(MIN_SHARE, Math.min(1, this.share(this.visiblePoints(spec))));
    const t0 = performance.now();
    const drawn = this.draw(this.canvas, spec.view, spec.runs, share);
    this.full = share >= 1;
    this.canvas.dataset.drawn = String(drawn);
    this.canvas.dataset.full = this.full ? "1" : "0";
    // A frame's cost shows in when the next one can start: the GPU (or SwiftShader, in software)
    // holds the next animation frame back until this one is drawn.
    requestAnimationFrame(() => {
      const ms = performance.now() - t0 - 1000 / 60;
      if (drawn >= 20000) {
        const c = Math.max(0, ms) / drawn;
        this.costPerPoint = this.costPerPoint === null ? c : 0.5 * this.costPerPoint + 0.5 * c;
      }
      this.onPainted?.({ drawn, full: this.full });
      if (this.pending) return; // a newer frame is on its way
      if (!this.full) {
        const wait = SETTLE_MS - (performance.now() - this.moving);
        if (wait > 0) this.settleTimer = setTimeout(() => this.schedule(), wait);
        else this.schedule();
        return;
      }
      requestAnimationFrame(() => {
        if (!this.pending && this.full) this.release(drawn);
      });
    });
  }

  /** Resolve the redraw() promises waiting for every point to be on screen. */
  release(drawn) {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve(drawn);
  }

  /** Draw the sets into the bound framebuffer of `target` size; -> points drawn. */
  draw(target, view, runsOf, share, scale = null) {
    const gl = this.gl;
    const dpr = scale ?? this.dpr ?? 1;
    const W = target.width;
    const H = target.height;
    gl.viewport(0, 0, W, H);
    if (this.transparent) gl.clearColor(0, 0, 0, 0);
    else gl.clearColor(...this.background, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(this.program);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniform3f(this.u.view, view.x, view.y, view.scale * dpr);
    gl.uniform2f(this.u.canvas, W, H);
    let drawn = 0;
    for (const name of this.order) {
      const set = this.sets.get(name);
      const s = this.styles.get(name) ?? {};
      if (s.hidden || !set.n) continue;
      const radius = ((s.diameter ?? 2) / 2) * dpr;
      gl.uniform1f(this.u.radius, radius);
      // Room for the soft edge, except for points of two pixels or less, whose edge is their
      // whole body: a wider square would triple the fragments of the densest pictures.
      gl.uniform1f(this.u.size, radius <= 1 ? Math.max(1, Math.round(2 * radius)) : Math.ceil(2 * radius + 1));
      gl.uniform1f(this.u.opacity, s.opacity ?? 1);
      const tint = s.tint ?? (set.tinted ? [1, 1, 1, 1] : null);
      gl.uniform4f(this.u.tint, ...(tint ?? [0, 0, 0, 0]));
      gl.uniform4f(this.u.outline, ...(s.outline ?? [0, 0, 0]), 1);
      gl.uniform1f(this.u.outlineWidth, (s.outlineWidth ?? 0) * dpr);
      gl.bindBuffer(gl.ARRAY_BUFFER, set.xy);
      gl.enableVertexAttribArray(0);
      gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
      if (set.tinted) {
        gl.disableVertexAttribArray(1);
        gl.vertexAttrib4f(1, 1, 1, 1, 1);
      } else {
        gl.bindBuffer(gl.ARRAY_BUFFER, set.rgba);
        gl.enableVertexAttribArray(1);
        gl.vertexAttribPointer(1, 4, gl.UNSIGNED_BYTE, true, 0, 0);
      }
      const runs = runsOf?.(name) ?? set.runs;
      drawn += drawRuns(gl, runs, share);
    }
    return drawn;
  }

  /**
   * The world from `view` drawn into a new 2-D canvas of width x height CSS pixels at `scale`
   * device pixels per CSS pixel, every point of every run (for a picture to save).
   */
  picture(width, height, view, scale) {
    const gl = this.gl;
    const max = gl.getParameter(gl.MAX_RENDERBUFFER_SIZE);
    const s = Math.min(scale, max / width, max / height);
    const W = Math.max(1, Math.floor(width * s));
    const H = Math.max(1, Math.floor(height * s));
    const fb = gl.createFramebuffer();
    const rb = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, rb);
    gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, W, H);
    gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, rb);
    const pixels = new Uint8Array(W * H * 4);
    try {
      this.draw({ width: W, height: H }, view, null, 1, s);
      gl.readPixels(0, 0, W, H, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    } finally {
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.deleteFramebuffer(fb);
      gl.deleteRenderbuffer(rb);
    }
    const out = document.createElement("canvas");
    out.width = W;
    out.height = H;
    const img = new ImageData(W, H);
    const row = W * 4;
    for (let y = 0; y < H; y++) img.data.set(pixels.subarray((H - 1 - y) * row, (H - y) * row), y * row); // GL rows run bottom-up
    if (this.transparent) {
      const d = img.data; // premultiplied in GL, straight in ImageData
      for (let i = 0; i < d.length; i += 4) {
        const a = d[i + 3];
        if (a && a < 255) for (let k = 0; k < 3; k++) d[i + k] = Math.min(255, Math.round((d[i + k] * 255) / a));
      }
    }
    out.getContext("2d").putImageData(img, 0, 0);
    return out;
  }

  destroy() {
    cancelAnimationFrame(this.pending);
    clearTimeout(this.settleTimer);
    for (const name of [...this.order]) this.drop(name);
    this.gl.getExtension("WEBGL_lose_context")?.loseContext();
  }
}

/** Draw a share of each run; adjacent runs drawn whole are merged into one call. */
function drawRuns(gl, runs, share) {
  let drawn = 0;
  let start = -1;
  let end = -1;
  const flush = () => {
    if (end > start) gl.drawArrays(gl.POINTS, start, end - start);
    start = end = -1;
  };
  for (const [first, count] of runs) {
    const n = share >= 1 ? count : Math.ceil(count * share);
    if (!n) continue;
    drawn += n;
    if (n === count && first === end) {
      end += n;
      continue;
    }
    flush();
    start = first;
    end = first + n;
    if (n < count) flush();
  }
  flush();
  return drawn;
}

function program(gl, vs, fs) {
  const p = gl.createProgram();
  for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`WebGL shader: ${gl.getShaderInfoLog(s)}`);
    gl.attachShader(p, s);
  }
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`WebGL program: ${gl.getProgramInfoLog(p)}`);
  return p;
}
