"""An installed (non-editable) copy of qkatlas, as the Dockerfile and `pip install .` make it,
serves the page and knows its model catalog."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .test_cli import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """qkatlas built as a wheel and installed, without dependencies, into a folder of its own."""
    wheels = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("qkatlas-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target


def installed_env(site: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QKATLAS_")}
    return {**env, "PYTHONPATH": str(site)}


def test_installed_copy_is_the_one_imported_and_lists_its_catalog(installed, tmp_path):
    env = installed_env(installed)
    where = subprocess.run([sys.executable, "-c", "import qkatlas; print(qkatlas.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed))
    models = subprocess.run([sys.executable, "-m", "qkatlas", "models"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout
    assert "minilm" in models and "tiny-gpt2" in models


def test_installed_copy_serves_the_page_and_the_catalog(installed, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qkatlas", "--data-dir", str(tmp_path / "atlases"), "serve",
                             "--port", str(port)], env=installed_env(installed), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        hang_guard = time.monotonic() + 120
        while True:
            try:
                page = httpx.get(base + "/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < hang_guard, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.3)
        assert page.status_code == 200 and "<script" in page.text and "qkatlas" in page.text
        assert httpx.get(base + "/js/app.js").status_code == 200
        ids = {m["id"] for m in httpx.get(base + "/api/models").json()}
        assert {"minilm", "dinov2-small", "tiny-gpt2"} <= ids
    finally:
        proc.terminate()
        proc.wait(timeout=30)
