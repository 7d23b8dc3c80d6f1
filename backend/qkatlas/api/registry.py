"""The open atlases of a data dir, by name: opened lazily, once, and kept while unchanged.

An atlas whose manifest was rewritten (a build finished a stage) is reopened, and an unknown
name re-scans the data dir, since atlases appear while the server runs.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import QkatlasError
from ..manifest import manifest_path
from ..store import list_atlases, open_atlas
from .lru import LRU
from .served import ServedAtlas, file_stamp

CACHE_BYTES = 1 << 30  # derived arrays kept in memory, all atlases together


class AtlasRegistry:
    def __init__(self, data_dir: Path, cache_bytes: int = CACHE_BYTES):
        self.data_dir = Path(data_dir)
        self.cache = LRU(cache_bytes)
        self._open: dict[str, ServedAtlas] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ServedAtlas:
        """The atlas called `name`; UnknownAtlas (404) naming the atlases there are."""
        stamp = file_stamp(manifest_path(self.data_dir / name))
        served = self._open.get(name)
        if served is not None and served.stamp == stamp:
            return served
        served = ServedAtlas(open_atlas(self.data_dir, name), stamp, self.cache)
        with self._lock:
            self._open[name] = served
        return served

    def readable(self) -> list[ServedAtlas]:
        """Every atlas in the data dir whose manifest can be read, in name order."""
        out = []
        for path in list_atlases(self.data_dir):
            try:
                out.append(self.get(path.name))
            except QkatlasError:
                continue  # being written or broken: listed once it is readable
        return out
