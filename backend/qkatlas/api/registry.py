"""The open atlases of a data dir, by name: opened lazily, once, and kept while unchanged; and
whether each one loads (what the atlas list and /readyz report).

An atlas whose manifest was rewritten (a build finished a stage) is reopened, and an unknown
name re-scans the data dir, since atlases appear while the server runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import AtlasDamaged, QkatlasError, UnknownAtlas
from ..layout import ALL
from ..manifest import manifest_path
from ..store import list_atlases, open_atlas, projection_file
from .lru import LRU
from .served import ServedAtlas, file_stamp

CACHE_BYTES = 1 << 30  # derived arrays kept in memory, all atlases together


@dataclass(frozen=True)
class AtlasState:
    """One atlas as last checked: `served` when its manifest, token table and one head of its first
    complete layout load, else `damage` (the error naming the file). The check is current while
    the files it read (`files`) keep the stamps they had (`stamps`)."""

    name: str
    served: ServedAtlas | None
    damage: AtlasDamaged | None
    files: tuple[Path, ...]
    stamps: tuple

    def current(self) -> bool:
        return tuple(file_stamp(p) for p in self.files) == self.stamps


class AtlasRegistry:
    def __init__(self, data_dir: Path, cache_bytes: int = CACHE_BYTES):
        self.data_dir = Path(data_dir)
        self.cache = LRU(cache_bytes)
        self._open: dict[str, ServedAtlas] = {}
        self._checked: dict[str, AtlasState] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ServedAtlas:
        """The atlas called `name`; UnknownAtlas (404) naming the atlases there are, AtlasDamaged
        (503) when its manifest does not load."""
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

    # -- whether atlases load ---------------------------------------------------------

    def state(self, name: str, cached_only: bool = False) -> AtlasState | None:
        """The atlas's state, checked again when a file the last check read has changed; None for
        an atlas that is gone, or, with cached_only, when a check would have to read files."""
        kept = self._checked.get(name)
        if kept is not None and kept.current():
            return kept
        if cached_only:
            return None
        state = self._check(name)
        with self._lock:
            if state is None:
                self._checked.pop(name, None)
            else:
                self._checked[name] = state
        return state

    def states(self, cached_only: bool = False) -> list[AtlasState] | None:
        """The state of every atlas in the data dir, in name order (None: see `state`)."""
        out = []
        for path in list_atlases(self.data_dir):
            state = self.state(path.name, cached_only)
            if state is None and cached_only:
                return None
            if state is not None:
                out.append(state)
        return out

    def checked(self, name: str, cached_only: bool = False) -> ServedAtlas | None:
        """The atlas called `name` once its files are known to load; UnknownAtlas (404) or
        AtlasDamaged (503) otherwise; None with cached_only when that takes reading files."""
        state = self.state(name, cached_only)
        if state is None:
            return None if cached_only else self.get(name)  # gone: UnknownAtlas naming those there are
        if state.damage is not None:
            raise state.damage
        return state.served

    def _check(self, name: str) -> AtlasState | None:
        """Read the manifest, the token table and head L00H00 of the first complete layout afresh (a
        reader of its own: the served one keeps what it read before) and say whether they load."""
        manifest = manifest_path(self.data_dir / name)
        files, stamps = (manifest,), (file_stamp(manifest),)
        try:
            served = self.get(name)
            atlas = open_atlas(self.data_dir, name)
            done = [layout for layout in ALL
                    if (kept := atlas.manifest.reductions.get(layout.key)) is not None and kept.complete]
            head = (projection_file(atlas.path, 0, 0, done[0]),) if done else ()
            files = (manifest, atlas.path / "tokens.parquet", *head)
            stamps = (*stamps, *(file_stamp(p) for p in files[1:]))
            atlas.tokens  # noqa: B018 - read for the check
            if done:
                if stamps[2] is None:
                    raise atlas.damaged(head[0], "missing; the manifest records its layout complete")
                atlas.projection(0, 0, done[0])
        except AtlasDamaged as e:
            return AtlasState(name, None, e, files, stamps)
        except UnknownAtlas:
            return None  # removed since it was listed
        return AtlasState(name, served, None, files, stamps)
