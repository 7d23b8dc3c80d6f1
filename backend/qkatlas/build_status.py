"""What running builds are doing, for the API: one small JSON file per build in the data dir.

A build writes `.builds/<atlas>.json` (model, stage, heads done) as it goes and removes it when
it ends; the server lists the files whose process is still alive, so a killed build is never
shown as running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from .files import write_json

FOLDER = ".builds"
MIN_INTERVAL_S = 0.5  # a fast stage (PCA) advances hundreds of times a second: write at most this often


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class BuildStatus:
    """A progress Reporter that keeps `.builds/<atlas>.json` up to date and passes every call on."""

    def __init__(self, data_dir: Path, atlas: str, model: str, label: str, inner):
        self.path = Path(data_dir) / FOLDER / f"{atlas}.json"
        self.state = {"atlas": atlas, "model": model, "label": label, "stage": "starting", "done": 0, "total": 0,
                      "pid": os.getpid()}
        self.inner = inner
        self._written = 0.0

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written >= MIN_INTERVAL_S:
            try:
                write_json(self.path, {**self.state, "updated": _now()})
            except OSError:
                pass  # progress is a courtesy: a full disk must not fail the build here
            self._written = now

    def stage(self, name: str, total: int) -> None:
        self.state.update(stage=name, done=0, total=total)
        self._write(force=True)
        self.inner.stage(name, total)

    def advance(self, n: int = 1) -> None:
        self.state["done"] += n
        self._write(force=self.state["done"] >= self.state["total"])
        self.inner.advance(n)

    def message(self, text: str) -> None:
        self.inner.message(text)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def running_builds(data_dir: Path) -> list[dict]:
    """The builds running now (their process is alive), by atlas name."""
    out = []
    folder = Path(data_dir) / FOLDER
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            state = json.loads(path.read_text())
            pid = int(state.pop("pid"))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or not ours
        if _alive(pid):
            out.append(state)
    return out
