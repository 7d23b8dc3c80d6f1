"""Shared lookups for the routers: the settings, and an atlas by name (or 404).

Atlases are opened lazily, once, and kept; an atlas whose manifest was rewritten (a build
finished a stage) is reopened, and an unknown name re-scans the data dir, since atlases
appear while the server runs.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import Path as PathParam
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from ..errors import QkatlasError
from ..settings import Settings
from ..store import list_atlases, open_atlas
from .served import LRU, ServedAtlas, file_stamp

CACHE_BYTES = 1 << 30  # derived arrays kept in memory, all atlases together


class AtlasRegistry:
    def __init__(self, data_dir: Path, cache_bytes: int = CACHE_BYTES):
        self.data_dir = Path(data_dir)
        self.cache = LRU(cache_bytes)
        self._open: dict[str, ServedAtlas] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ServedAtlas:
        stamp = file_stamp(self.data_dir / name / "manifest.json")
        served = self._open.get(name)
        if served is not None and served.stamp == stamp:
            return served
        atlas = open_atlas(self.data_dir, name)  # UnknownAtlas, naming the atlases there are
        served = ServedAtlas(atlas, stamp, self.cache)
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


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_registry(request: Request) -> AtlasRegistry:
    return request.app.state.atlases


async def get_atlas(request: Request,
                    atlas: str = PathParam(description="atlas id, as listed by GET /api/atlases",
                                           examples=["tiny-gpt2__default-n24"])) -> ServedAtlas:
    return request.app.state.atlases.get(atlas)


async def cached_or_in_thread(fn, *args):
    """fn(*args): on the event loop when its answer is already cached (a memory lookup: no thread
    hop), else in a worker thread, since building it reads files and computes."""
    hit = fn(*args, cached_only=True)
    return hit if hit is not None else await run_in_threadpool(fn, *args)
