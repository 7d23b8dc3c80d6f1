"""HTTP over a bare socket, for what an HTTP client library will not send: a Content-Length the
body never reaches, a chunked body that goes on, headers that stop half way."""

from __future__ import annotations

import select
import socket
import time
from typing import Iterable
from urllib.parse import urlparse


def connect(url: str, timeout: float = 10) -> socket.socket:
    u = urlparse(url)
    return socket.create_connection((u.hostname, u.port), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the answer, read until the server closes the connection or the
    body declared by Content-Length has arrived."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", -1))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def post_streaming(url: str, path: str, headers: dict[str, str], chunks: Iterable[bytes],
                   timeout: float = 10) -> tuple[int, dict[str, str], bytes, int, float]:
    """POST `path` sending `chunks` one by one and stopping as soon as the server answers.

    Returns (status, headers, body, bytes of the body sent, seconds from the request to the
    answer). A server that waited for the whole body would not answer before `timeout`.
    """
    with connect(url, timeout) as sock:
        host = urlparse(url).netloc
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        t0 = time.monotonic()
        sock.sendall((head + "\r\n").encode())
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0.005)[0]:
                break  # the answer is there: send no more
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        select.select([sock], [], [], timeout)
        status, answer_headers, body = read_response(sock)
        return status, answer_headers, body, sent, time.monotonic() - t0


def chunked(data: bytes, size: int) -> Iterable[bytes]:
    """`data` in HTTP/1.1 chunked transfer coding, `size` bytes a chunk, and the last chunk."""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"
