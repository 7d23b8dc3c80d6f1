"""Run the app with uvicorn: in the foreground (`qkatlas serve`) or in a thread (tests, benchmarks).

Both use one uvicorn configuration, bounded for a LAN: no Server banner, request headers of at
most H11_MAX_HEADER_BYTES that must arrive within HEADER_TIMEOUT_S (uvicorn itself has no such
deadline: a client sending a header line now and then would hold a connection forever),
idle keep-alive connections closed after KEEP_ALIVE_S, and at most MAX_CONNECTIONS at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .api.app import create_app
from .api.hosts import WILDCARD_BINDS
from .errors import InvalidInput
from .settings import Settings

H11_MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT_S = 10
KEEP_ALIVE_S = 5
MAX_CONNECTIONS = 1000
GRACEFUL_SHUTDOWN_S = 10

log = logging.getLogger("qkatlas")


class HeaderDeadline(H11Protocol):
    """h11 with a deadline for each request's headers, from the connection's start or the end of
    the previous response; the connection is closed when they have not all arrived by then."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_late)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()

    def _headers_late(self) -> None:
        waiting = self.cycle is None or self.cycle.response_complete  # no request in progress
        if waiting and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app, **options) -> uvicorn.Config:
    return uvicorn.Config(app, http=HeaderDeadline, h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
                          server_header=False, timeout_keep_alive=KEEP_ALIVE_S, limit_concurrency=MAX_CONNECTIONS,
                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, **options)


def check_port_free(settings: Settings) -> None:
    """Fail with a message for people, not uvicorn's traceback, when the address is taken.

    SO_REUSEADDR as uvicorn binds: a port whose last server stopped a moment ago (its
    connections in TIME_WAIT) is free to listen on, not "address already in use".
    """
    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
        except OSError as e:
            raise InvalidInput(f"cannot listen on {settings.host}:{settings.port} ({e.strerror}); "
                               f"choose another with --port or QKATLAS_PORT") from None


def warn_if_open(settings: Settings) -> None:
    if settings.host in WILDCARD_BINDS and not settings.token:
        log.warning("listening on every interface (%s) with no token: anyone on the network can run live "
                    "inference; set QKATLAS_TOKEN to ask for one", settings.host or "*")


def serve(settings: Settings) -> None:
    check_port_free(settings)
    warn_if_open(settings)
    uvicorn.Server(uvicorn_config(create_app(settings), host=settings.host, port=settings.port,
                                  log_level="info")).run()


@contextmanager
def serve_in_thread(settings: Settings, lifespan: str = "on") -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL.
    For tests and benchmarks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(create_app(settings), log_level="warning", lifespan=lifespan))
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
