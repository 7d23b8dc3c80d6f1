"""Changing atlases on disk the way a running build does, for tests of what the page shows
meanwhile: a layout's heads appear one file pair at a time, an atlas appears all at once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def layout_heads(atlas: Path, key: str) -> list[Path]:
    """The head files (.npy, each beside its .json) of one layout, e.g. "pca-2d", in head order."""
    return sorted((atlas / "projections" / key).glob("L*H*.npy"))


def write_heads(atlas: Path, heads: list[Path], key: str) -> None:
    """Write `heads` (files of another layout) as heads of layout `key`, as a build finishes them."""
    folder = atlas / "projections" / key
    folder.mkdir(exist_ok=True)
    for npy in heads:
        shutil.copy(npy.with_suffix(".json"), folder / npy.with_suffix(".json").name)
        shutil.copy(npy, folder / npy.name)


def publish_atlas(source: Path, data_dir: Path, staging: Path) -> Path:
    """Put a copy of atlas `source` into `data_dir` in one rename, so no reader sees half of it."""
    staged = staging / source.name
    shutil.copytree(source, staged)
    target = data_dir / source.name
    os.rename(staged, target)
    return target
