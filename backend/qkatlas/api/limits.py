"""Request bodies, bounded before the app reads them: a size limit and a time limit.

A declared Content-Length over the limit is answered 413 before a byte of the body is read; a
body without one (chunked) is counted as it arrives and answered 413 as soon as it passes the
limit. Either way the app only ever sees a whole body that fits: it is read here, within
`BODY_IDLE_S` seconds between chunks and `BODY_TOTAL_S` in all (else 408), and handed on.
Uploads (multipart forms) may hold `max_upload_bytes` plus the form's other fields; any other
body (JSON) `max_json_bytes`.
"""

from __future__ import annotations

import json

import anyio

from ..settings import Settings

FORM_FIELDS_BYTES = 64 * 1024  # the multipart framing and small fields beside an upload
BODY_IDLE_S = 15
BODY_TOTAL_S = 120


async def send_error(send, status: int, detail: str) -> None:
    """A JSON {"detail"} answer straight from a middleware; the connection closes after it."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Pure ASGI middleware: 413 for a body over the limit, 408 for one that arrives too slowly."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.upload = settings.max_upload_bytes + FORM_FIELDS_BYTES
        self.json = settings.max_json_bytes

    def limit(self, headers: dict[bytes, bytes]) -> tuple[int, str]:
        """(limit in bytes, the limit named for people) of a request with these headers."""
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            return self.upload, (f"{self.upload} bytes for an upload (max_upload_bytes + {FORM_FIELDS_BYTES} "
                                 "of form fields)")
        return self.json, f"{self.json} bytes (max_json_bytes)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)  # no body
            return
        limit, named = self.limit(headers)
        if length is not None and (not length.isdigit() or int(length) > limit):
            declared = length.decode(errors="replace")
            await send_error(send, 413, f"the request body ({declared} bytes) is larger than the limit of {named}")
            return
        body = bytearray()
        try:
            with anyio.fail_after(BODY_TOTAL_S):
                more = True
                while more:
                    with anyio.fail_after(BODY_IDLE_S):
                        message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > limit:
                        await send_error(send, 413, f"the request body is larger than the limit of {named}")
                        return
        except TimeoutError:
            await send_error(send, 408, f"the request body did not arrive in time ({BODY_IDLE_S} s between "
                                        f"chunks, {BODY_TOTAL_S} s in all)")
            return
        await self.app(scope, replay(bytes(body), receive), send)


def replay(body: bytes, receive):
    """A receive that hands over `body` in one message, then whatever the client sends next (a disconnect)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
