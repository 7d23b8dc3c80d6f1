"""Atlas versions: a rebuild never exposes a mixed state.

`<data_dir>/<atlas>` is a symbolic link to `<data_dir>/.versions/<atlas>/<version>/`. A build
whose capture changes (new corpus, new model) writes a new version beside the live one and
switches the link atomically (a new link renamed over the old one) once its capture is
complete; the server keeps reading the old version until then, and each reader resolves the
link once, so it never mixes files of two versions. A killed build leaves an unpublished
version that the next build of that atlas removes, with stray temp files of killed writes.
Folders written by older qkatlas (a real directory, no link) are served as they are and become
a version when they are rebuilt.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import InvalidInput

FOLDER = ".versions"
KEEP_PREVIOUS = 1  # a server may still be reading the version a publish replaced
LEGACY = "00000000T000000000000Z-legacy"  # sorts before every dated version


def versions_dir(data_dir: Path, atlas: str) -> Path:
    return Path(data_dir) / FOLDER / atlas


def live_version(data_dir: Path, atlas: str) -> Path | None:
    """The folder `<data_dir>/<atlas>` stands for now (a version or a legacy folder), or None."""
    link = Path(data_dir) / atlas
    return link.resolve() if link.exists() else None


def new_version(data_dir: Path, atlas: str) -> Path:
    """An empty folder for a version of `atlas` that is not published yet."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = versions_dir(data_dir, atlas) / f"{stamp}-{os.getpid()}"
    path.mkdir(parents=True)
    return path


def publish(data_dir: Path, atlas: str, version: Path) -> None:
    """Point `<data_dir>/<atlas>` at `version`, atomically, and drop versions nobody needs."""
    link = Path(data_dir) / atlas
    if link.is_dir() and not link.is_symlink():  # a legacy folder becomes the previous version
        os.replace(link, versions_dir(data_dir, atlas) / LEGACY)
    tmp = link.with_name(f".{atlas}.link.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(version, data_dir))  # relative: the data dir may be mounted elsewhere
    os.replace(tmp, link)
    sweep(data_dir, atlas)


def sweep(data_dir: Path, atlas: str) -> None:
    """Remove unpublished versions (killed builds), all but KEEP_PREVIOUS older ones, and the
    temp files of killed writes in the live version."""
    live = live_version(data_dir, atlas)
    folder = versions_dir(data_dir, atlas).resolve()
    versions = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    # names are dates: newer than the live one means never published (a killed build)
    older = [p for p in versions if live is not None and p.name < live.name and live.parent == folder]
    keep = set(older[-KEEP_PREVIOUS:]) | {live}
    for old in versions:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)
    if live is not None:
        for tmp in live.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)


@contextmanager
def build_lock(data_dir: Path, atlas: str):
    """One build of an atlas at a time: a second one fails at once with a message naming it."""
    folder = versions_dir(data_dir, atlas)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{atlas}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"another build of atlas {atlas!r} is running; wait for it or stop it first") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
