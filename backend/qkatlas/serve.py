"""Run the app with uvicorn: in the foreground (`qkatlas serve`) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from .api.app import create_app
from .errors import InvalidInput
from .settings import Settings


def check_port_free(settings: Settings) -> None:
    """Fail with a message for people, not uvicorn's traceback, when the address is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((settings.host, settings.port))
        except OSError as e:
            raise InvalidInput(f"cannot listen on {settings.host}:{settings.port} ({e.strerror}); "
                               f"choose another with --port or QKATLAS_PORT") from None


def serve(settings: Settings) -> None:
    check_port_free(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@contextmanager
def serve_in_thread(settings: Settings, lifespan: str = "on") -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL.
    For tests and benchmarks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
