// Polling: ask the server for the atlas list and the builds running now, every few seconds
// while something is being built (no atlas yet, a layout still computing, a build running),
// and now and then otherwise, so that a build started later still shows up.

import * as api from "./api.js";

const POLL_MS = 3000;
const IDLE_POLL_MS = 15000;

/** Whether an atlas has a layout still being computed. */
const computing = (atlas) => Object.values(atlas.complete || {}).some((done) => !done);

export class Poller {
  /** onUpdate({atlases, builds, buildsError}) after every poll; a failed atlas list skips it. */
  constructor(onUpdate) {
    this.onUpdate = onUpdate;
    this.timer = null;
    this.busy = true;
  }

  /** Ask now, then keep asking. */
  async poll() {
    clearTimeout(this.timer);
    const [atlases, builds] = await Promise.allSettled([api.atlases(), api.builds()]);
    try {
      if (atlases.status === "fulfilled") {
        const running = builds.status === "fulfilled" ? builds.value.builds : [];
        this.busy = !atlases.value.length || atlases.value.some(computing) || running.length > 0;
        await this.onUpdate({ atlases: atlases.value, builds: running, buildsError: builds.reason ?? null });
      }
    } finally {
      this.timer = setTimeout(() => this.poll(), this.busy ? POLL_MS : IDLE_POLL_MS);
    }
  }
}
