"""Server-Timing: every response says how long the server took to answer (shown by browser devtools,
read by bench/api.py to tell the server's time from the client's)."""

from __future__ import annotations

import time


class ServerTiming:
    """Pure ASGI middleware adding `Server-Timing: app;dur=<ms>` (time until the response headers)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def send_timed(message):
            if message["type"] == "http.response.start":
                dur = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", dur)]}
            await send(message)

        await self.app(scope, receive, send_timed)
