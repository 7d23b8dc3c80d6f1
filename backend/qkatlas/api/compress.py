"""gzip for text answers (JSON, JavaScript, CSS, HTML, Arrow tables), never on the event loop when large.

float32/float16 arrays and images are sent as they are: their low mantissa bytes are noise and
barely compress. A body or chunk of `THREAD_BYTES` or more is compressed in a worker thread
of this module's own (a few), so neither the event loop nor the threads of cheap reads wait
for a large table being compressed. Live answers come compressed already (`gzipped`, in their
inference thread); the middleware passes on any answer that names its Content-Encoding.
"""

from __future__ import annotations

import zlib

import anyio
import anyio.to_thread

MIN_BYTES = 1024
THREAD_BYTES = 64 * 1024
LEVEL = 5
COMPRESSED_TYPES = (b"text/", b"application/json", b"application/javascript", b"image/svg+xml",
                    b"application/vnd.apache.arrow.stream")


def gzipped(body: bytes, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """(body, headers to send with it): gzipped when the client accepts gzip and the body is large
    enough to gain, as the middleware would; for callers already off the event loop."""
    if "gzip" not in accept_encoding or len(body) < MIN_BYTES:
        return body, {}
    return zlib.compress(body, LEVEL, 16 + zlib.MAX_WBITS), {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}


class Compress:
    """Pure ASGI middleware: gzip when the client accepts it and the type is text-like."""

    def __init__(self, app, threads: int = 2):
        self.app = app
        self.limiter = anyio.CapacityLimiter(threads)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or b"gzip" not in dict(scope["headers"]).get(b"accept-encoding", b""):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        deflate = None  # the compressor, once the answer is being compressed

        async def compress(data: bytes, last: bool) -> bytes:
            work = (lambda: deflate.compress(data) + (deflate.flush() if last else b""))
            return await anyio.to_thread.run_sync(work, limiter=self.limiter) if len(data) >= THREAD_BYTES else work()

        async def send_compressed(message):
            nonlocal start, deflate
            if message["type"] == "http.response.start":
                start = message
                if not compressible(message):
                    await send(message)
                    start = None
                return
            if message["type"] != "http.response.body" or (start is None and deflate is None):
                await send(message)
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            if deflate is None:
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                if len(body) < MIN_BYTES and not more:
                    await send(start)
                    await send(message)
                    start = None
                    return
                deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                data = await compress(body, not more)
                headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
                if not more:
                    headers.append((b"content-length", str(len(data)).encode()))
                await send({**start, "headers": headers})
                start = None
                await send({**message, "body": data})
                return
            await send({**message, "body": await compress(body, not more)})

        await self.app(scope, receive, send_compressed)


def compressible(start: dict) -> bool:
    if start["status"] in (204, 206, 304):
        return False
    headers = {k.lower(): v for k, v in start.get("headers", ())}
    kind = headers.get(b"content-type", b"").lower()
    return b"content-encoding" not in headers and kind.startswith(COMPRESSED_TYPES)
