// Which point lies under the pointer: a uniform grid over points in world units, built once
// per set of points in one pass (a counting sort), so that a hover looks at the few points
// near the pointer, never at all of them (a head of a million points answers in well under a
// millisecond).

export class NearestIndex {
  /** xy: Float32Array (2 per point, world units; NaN points are left out). */
  constructor(xy) {
    const n = xy.length / 2;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i];
      const y = xy[2 * i + 1];
      if (x !== x || y !== y) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    if (!(x1 >= x0)) [x0, y0, x1, y1] = [0, 0, 1, 1];
    const w = Math.max(x1 - x0, 1e-9);
    const h = Math.max(y1 - y0, 1e-9);
    const cells = Math.max(1, Math.min(1 << 22, Math.ceil(n / 4)));
    const step = Math.sqrt((w * h) / cells) || 1;
    const nx = Math.max(1, Math.min(4096, Math.ceil(w / step)));
    const ny = Math.max(1, Math.min(4096, Math.ceil(h / step)));
    const cell = new Int32Array(n);
    const start = new Uint32Array(nx * ny + 1);
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i];
      const y = xy[2 * i + 1];
      if (x !== x || y !== y) {
        cell[i] = -1;
        continue;
      }
      const c = Math.min(ny - 1, Math.floor(((y - y0) / h) * ny)) * nx + Math.min(nx - 1, Math.floor(((x - x0) / w) * nx));
      cell[i] = c;
      start[c + 1]++;
    }
    for (let c = 0; c < nx * ny; c++) start[c + 1] += start[c];
    const fill = start.slice(0, nx * ny);
    const items = new Uint32Array(start[nx * ny]);
    for (let i = 0; i < n; i++) if (cell[i] >= 0) items[fill[cell[i]]++] = i;
    Object.assign(this, { xy, x0, y0, w, h, nx, ny, start, items });
  }

  /**
   * The point nearest (x, y) within `radius` (world units) that `keep(i)` accepts, or -1. Of
   * points at the same distance the later one wins: it is drawn on top.
   */
  nearest(x, y, radius, keep = null) {
    const { xy, x0, y0, w, h, nx, ny, start, items } = this;
    const cx0 = Math.max(0, Math.floor(((x - radius - x0) / w) * nx));
    const cx1 = Math.min(nx - 1, Math.floor(((x + radius - x0) / w) * nx));
    const cy0 = Math.max(0, Math.floor(((y - radius - y0) / h) * ny));
    const cy1 = Math.min(ny - 1, Math.floor(((y + radius - y0) / h) * ny));
    let best = -1;
    let bestD = radius * radius;
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const c = cy * nx + cx;
        for (let k = start[c]; k < start[c + 1]; k++) {
          const i = items[k];
          const dx = xy[2 * i] - x;
          const dy = xy[2 * i + 1] - y;
          const d = dx * dx + dy * dy;
          if (d < bestD || (d === bestD && i > best)) {
            if (keep && !keep(i)) continue;
            best = i;
            bestD = d;
          }
        }
      }
    }
    return best;
  }
}
