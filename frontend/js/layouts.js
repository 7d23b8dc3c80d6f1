// The layouts the server builds (method × dimension, in build order), as GET /api/layouts
// said. The front end learns from here alone which layouts exist, their keys (which key an
// atlas's `projections`, `complete` and `quality`) and their labels.

export class Layouts {
  /** list: [{key, method, dim, label}, ...] in build order. */
  constructor(list) {
    if (!Array.isArray(list) || !list.length || !list.every((l) => l.key && l.method && l.dim && l.label)) {
      throw new Error(`GET /api/layouts answered ${JSON.stringify(list)}, not a list of {key, method, dim, label}`);
    }
    this.list = list;
    this.methods = [...new Set(list.map((l) => l.method))];
    this.dims = [...new Set(list.map((l) => l.dim))].sort((a, b) => a - b);
  }

  /** The layout shown when the URL names none: the first one built. */
  get first() {
    return this.list[0];
  }

  /** The key of a method at a dimension ("pca", 2 -> "pca-2d"), or null when none is built. */
  key(method, dim) {
    return this.list.find((l) => l.method === method && l.dim === dim)?.key ?? null;
  }

  /** How people read a method's name ("tsne" -> "t-SNE"). */
  label(method) {
    return this.list.find((l) => l.method === method)?.label ?? method;
  }
}
