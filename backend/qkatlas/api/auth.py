"""The optional bearer token (QKATLAS_TOKEN) asked of live inference, the one costly thing a
client can ask for. Cheap reads, the page and health stay open.

A script sends `Authorization: Bearer <token>`. A browser visits `/?access_token=<token>` once
(the query parameter of RFC 6750; the page's own `token` parameter is a selected token): the
answer stores the token in an HttpOnly, SameSite=Strict cookie and redirects to the same page
without it, so the token leaves the address bar and history; the page's own requests then
carry the cookie (and no other site's requests do).
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request

from ..errors import InvalidInput, QkatlasError
from ..settings import Settings
from .limits import send_error

COOKIE = "qkatlas_token"
PARAM = "access_token"
COOKIE_DAYS = 30
TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")


class Unauthorized(QkatlasError):
    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="qkatlas"'}


def check_token_setting(settings: Settings) -> None:
    """A token must fit in a header and a cookie as it is."""
    if settings.token and not TOKEN_CHARS.fullmatch(settings.token):
        raise InvalidInput("token may hold letters, digits and . _ ~ + / = - only (--token / QKATLAS_TOKEN)")


def same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


async def require_token(request: Request) -> None:
    """Unauthorized (401) unless the request carries the token, when one is set."""
    token = request.app.state.settings.token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if (scheme.lower() == "bearer" and same(given.strip(), token)) or same(request.cookies.get(COOKIE), token):
        return
    raise Unauthorized("this server asks a token for live inference: send `Authorization: Bearer <token>`, or "
                       f"open /?{PARAM}=<token> once in this browser")


TokenDep = Annotated[None, Depends(require_token)]


class TokenLogin:
    """Pure ASGI middleware for `GET /?access_token=...`: the cookie and a redirect to the page
    without the token (401 for a wrong one)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.token = settings.token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/" or PARAM.encode() not in scope["query_string"]:
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == PARAM), None)
        if given is None:
            await self.app(scope, receive, send)
            return
        if self.token and not same(given, self.token):
            await send_error(send, 401, f"wrong token: open /?{PARAM}=<token> with the server's QKATLAS_TOKEN")
            return
        rest = urlencode([(k, v) for k, v in query if k != PARAM])
        headers = [(b"location", ("./?" + rest if rest else "./").encode()), (b"content-length", b"0"),
                   (b"cache-control", b"no-store")]
        if self.token:
            cookie = f"{COOKIE}={self.token}; Max-Age={COOKIE_DAYS * 86400}; Path=/; HttpOnly; SameSite=Strict"
            headers.append((b"set-cookie", cookie.encode()))
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
