"""How arrays and tables travel: binary bodies with ETag/Cache-Control (and 304), JSON or Arrow tables.

Also the OpenAPI description of those responses and of the {detail} errors, shared by the routers.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from fastapi import Request, Response

from .schemas import Error

OCTET = "application/octet-stream"
ARROW = "application/vnd.apache.arrow.stream"
PNG = "image/png"
LONG_CACHE = "public, max-age=3600"
REVALIDATE = "no-cache"  # for answers that change while a build runs: the browser asks again, gets a 304


def etag(*parts) -> str:
    """A strong ETag from whatever identifies the bytes (file stamps, parameters)."""
    return '"' + hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest() + '"'


def not_modified(request: Request, tag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or tag in tags


def cached_response(request: Request, body, tag: str, media_type: str = OCTET, cache: str = LONG_CACHE,
                    headers: dict[str, str] | None = None) -> Response:
    """`body` with ETag and Cache-Control, or an empty 304 when the client already holds it.

    `body` may be a function returning the bytes, so a 304 never renders them.
    """
    headers = {"ETag": tag, "Cache-Control": cache, **(headers or {})}
    if not_modified(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(body() if callable(body) else body, media_type=media_type, headers=headers)


def json_with_array(fields: dict, name: str, array: np.ndarray, decimals: int = 6) -> bytes:
    """`fields` and `name`: `array` as nested lists rounded to `decimals`, as JSON bytes.

    Encoded a row at a time: one call into the JSON encoder holds the GIL, and so the event
    loop, for the time of one row rather than of the whole array (~1 s for 10 M values).
    Rounded in float64, so 0.123457 is written as such, not as its float32 0.12345699965953827.
    """
    parts = [json.dumps(fields, separators=(",", ":"), ensure_ascii=False)[:-1], "," if fields else "",
             json.dumps(name), ":"]
    _nested(np.round(np.asarray(array, dtype=np.float64), decimals), parts)
    parts.append("}")
    return "".join(parts).encode()


def _nested(a: np.ndarray, parts: list[str]) -> None:
    if a.ndim <= 1:
        parts.append(json.dumps(a.tolist()))
        return
    parts.append("[")
    for i, sub in enumerate(a):
        if i:
            parts.append(",")
        _nested(sub, parts)
    parts.append("]")


def json_and_float16(fields: dict, array: np.ndarray) -> Response:
    """`fields` as JSON (its first X-Json-Bytes bytes, padded with spaces to an even length), then
    `array` as little-endian float16 of shape X-Shape."""
    head = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    head += b" " * (len(head) % 2)
    return Response(head + np.ascontiguousarray(array, dtype="<f2").tobytes(), media_type=OCTET,
                    headers={"X-Json-Bytes": str(len(head)), "X-Shape": ",".join(map(str, array.shape))})


def wants_arrow(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "arrow"
    return ARROW in request.headers.get("accept", "")


# ---------------------------------------------------------------------------------------
# OpenAPI descriptions


def errors(*statuses: int) -> dict:
    messages = {
        401: "a token is set (QKATLAS_TOKEN) and the request carries none, or another",
        404: "unknown atlas, layer, head, item, token or method: the message names the valid range",
        409: "the projection is not computed yet (a build is running or was not asked for it)",
        413: "input too large: the message names the limit",
        422: "a bad parameter: the message names it and its valid values",
        429: "live inference of this model is busy (its queue is full, or the wait was too long): retry after "
             "`Retry-After` seconds",
        503: "the atlas has a damaged file (the message names it, relative to the atlas), or the model of this "
             "atlas is warming up (retry after `Retry-After` seconds) or cannot be loaded here",
    }
    return {s: {"model": Error, "description": messages[s]} for s in statuses}


def binary(description: str, *, json_model=None, headers: tuple[str, ...] = ("X-Shape",)) -> dict:
    content = {OCTET: {"schema": {"type": "string", "format": "binary"}}}
    if json_model is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{json_model.__name__}"}}
    return {
        200: {"description": description, "content": content,
              "headers": {h: {"schema": {"type": "string"}} for h in (*headers, "ETag", "Cache-Control")}},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
    }


def table(model) -> dict:
    return {
        200: {"description": "the table as JSON columns, or as an Arrow IPC stream with format=arrow or "
                             f"Accept: {ARROW}",
              "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                          ARROW: {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
    }


def png(description: str) -> dict:
    return {200: {"description": description, "content": {PNG: {"schema": {"type": "string", "format": "binary"}}}},
            304: {"description": "not modified (If-None-Match matched the ETag)"}}
