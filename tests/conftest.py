"""Shared fixtures: tiny real models, real atlases on disk, and the shared real weights."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qkatlas.build import build
from qkatlas.settings import Settings

SHARED_MODELS = Settings.from_env().shared_models
needs_shared = pytest.mark.skipif(not (SHARED_MODELS / "all-MiniLM-L6-v2").is_dir(),
                                  reason=f"real weights folder {SHARED_MODELS} is absent")

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads a browser

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@functools.cache
def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or Debian's `docker-compose`, whichever is here; None if neither.
    Asked once per process: the CI check and every compose test share the answer."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="session")
def atlas_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("atlases")


@pytest.fixture(scope="session")
def settings(atlas_root) -> Settings:
    return Settings(data_dir=atlas_root, workers=1)


@pytest.fixture(scope="session")
def tiny_text_atlas(settings) -> Path:
    """tiny-gpt2 on 24 default sentences, PCA 2-D and 3-D for every head."""
    return build(settings, "tiny-gpt2", "default", limit=24, methods=["pca"], dims=[2, 3])


@pytest.fixture(scope="session")
def tiny_bert_atlas(settings) -> Path:
    return build(settings, "tiny-bert", "default", limit=24, methods=["pca"], dims=[2, 3])


@pytest.fixture(scope="session")
def tiny_image_atlas(settings) -> Path:
    """tiny-vit (4x4 patches + CLS) on 6 default images, PCA 2-D and 3-D."""
    return build(settings, "tiny-vit", "images", limit=6, methods=["pca"], dims=[2, 3])


@pytest.fixture(scope="session")
def minilm_atlas(settings) -> Path:
    if not (SHARED_MODELS / "all-MiniLM-L6-v2").is_dir():
        pytest.skip(f"real weights folder {SHARED_MODELS} is absent")
    return build(settings, "minilm", "default", limit=60, methods=["pca"], dims=[2, 3])


def pytest_sessionstart(session):
    """Under CI what a test would skip on a user's machine must be there: a green run that
    skipped every browser or real-weights test would prove nothing."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    missing = [what for what, ok in ((f"the real weights folder {SHARED_MODELS}", (SHARED_MODELS / "all-MiniLM-L6-v2").is_dir()),
                                     (f"Chromium at {CHROMIUM}", CHROMIUM.exists()),
                                     ("`docker compose` or docker-compose", compose_command() is not None)) if not ok]
    if missing:
        pytest.exit(f"CI needs {' and '.join(missing)}; .ci/run installs Chromium and docker-compose, and shared/ lies "
                    "beside the clone", returncode=3)
