"""The deploy test's checks of the running container, over HTTP from the host.

    python3 tests/deploy/probe.py ready URL SECONDS         # /healthz, then /readyz answers 200
    python3 tests/deploy/probe.py points URL SECONDS        # an atlas, the page, one head's points
    python3 tests/deploy/probe.py atlases URL N SECONDS     # at least N atlases listed
    python3 tests/deploy/probe.py protected URL TOKEN       # token, Host allow-list, body limit, headers

Standard library only (the host's python3). Exits non-zero with the reason on failure.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from email.message import Message


def get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """(status, headers (names in any case), body); 0 when nothing answers yet. A POST when `data`
    is given; `headers` may name the Host (urllib then sends that one)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers or {}), timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, Message(), b""


def wait_for(url: str, seconds: float, ok=lambda status, body: status == 200) -> tuple[Message, bytes, float]:
    start = time.monotonic()
    status, body = 0, b""
    while time.monotonic() - start < seconds:
        status, headers, body = get(url)
        if ok(status, body):
            return headers, body, time.monotonic() - start
        time.sleep(3)
    sys.exit(f"FAIL: {url} did not answer as expected within {seconds:.0f} s (last: {status} {body[:300]!r})")


def ready(base: str, seconds: float) -> None:
    _, _, up = wait_for(f"{base}/healthz", seconds)
    print(f"ok: /healthz answered after {up:.0f} s")
    _, body, t = wait_for(f"{base}/readyz", seconds)
    print(f"ok: /readyz answered after {up + t:.0f} s: {body.decode()}")


def atlases(base: str, n: int, seconds: float) -> list[dict]:
    def enough(status, body):
        return status == 200 and len(json.loads(body)) >= n

    _, body, t = wait_for(f"{base}/api/atlases", seconds, enough)
    listed = json.loads(body)
    print(f"ok: /api/atlases lists {len(listed)} after {t:.0f} s: {', '.join(a['id'] for a in listed)}")
    return listed


def points(base: str, seconds: float) -> None:
    atlas = atlases(base, 1, seconds)[0]
    status, headers, page = get(f"{base}/")
    if status != 200 or b"<html" not in page.lower():
        sys.exit(f"FAIL: the page at / answered {status} {page[:200]!r}")
    print(f"ok: / serves the page ({len(page)} bytes) from the installed package")
    # 409 until the build has written this head's layout.
    url = f"{base}/api/atlases/{atlas['id']}/heads/0/0/points?method=pca&dim=2&format=binary"
    headers, body, t = wait_for(url, seconds)
    if not headers.get("X-Shape") or not headers.get("X-Tokens"):
        sys.exit(f"FAIL: points without X-Shape / X-Tokens headers: {dict(headers)}")
    rows, dim = (int(v) for v in headers["X-Shape"].split(","))
    tokens = int(headers["X-Tokens"])
    if (rows, dim) != (2 * atlas["tokens"], 2) or tokens != atlas["tokens"]:
        sys.exit(f"FAIL: X-Shape {rows},{dim} / X-Tokens {tokens}, expected {2 * atlas['tokens']},2 / {atlas['tokens']}")
    if len(body) != rows * dim * 4:
        sys.exit(f"FAIL: {len(body)} bytes of points, expected {rows} x {dim} float32 = {rows * dim * 4}")
    print(f"ok: L0 H0 PCA 2-D points after {t:.0f} s: X-Shape {rows},{dim}, {len(body)} bytes of float32 "
          f"({atlas['model']['id']}, {atlas['tokens']} tokens)")


def expect(what: str, answer: tuple[int, Message, bytes], status: int) -> Message:
    got, headers, body = answer
    if got != status:
        sys.exit(f"FAIL: {what}: expected {status}, got {got} {body[:300]!r}")
    print(f"ok: {what}: {status} {json.loads(body)['detail'][:90] if body[:1] == b'{' else ''}")
    return headers


def protected(base: str, token: str) -> None:
    """What guards a server on a LAN (README, Deploy on a lab server), asked of the container."""
    ask = json.dumps({"atlas": "any", "text": "a sentence"}).encode()
    json_type = {"Content-Type": "application/json"}
    expect("live inference without the token", get(f"{base}/api/attention", ask, json_type), 401)
    expect("live inference with a wrong token",
           get(f"{base}/api/attention", ask, {**json_type, "Authorization": "Bearer wrong"}), 401)
    # Past the token: the atlas named does not exist, so the answer is the app's own 404.
    expect("live inference with the token reaches the app",
           get(f"{base}/api/attention", ask, {**json_type, "Authorization": f"Bearer {token}"}), 404)
    expect("a Host name not allowed (DNS rebinding)", get(f"{base}/healthz", headers={"Host": "rebind.example"}), 400)
    expect("a JSON body over the limit", get(f"{base}/api/attention", b"{" + b" " * 200_000 + b"}", json_type), 413)
    headers = expect("the page", get(f"{base}/"), 200)
    missing = [h for h in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options") if not headers.get(h)]
    if missing:
        sys.exit(f"FAIL: the page lacks the security headers {missing}")
    print("ok: the page carries Content-Security-Policy, X-Content-Type-Options, X-Frame-Options")


if __name__ == "__main__":
    command, *args = sys.argv[1:] or [""]
    if command == "ready" and len(args) == 2:
        ready(args[0], float(args[1]))
    elif command == "points" and len(args) == 2:
        points(args[0], float(args[1]))
    elif command == "protected" and len(args) == 2:
        protected(args[0], args[1])
    elif command == "atlases" and len(args) == 3:
        atlases(args[0], int(args[1]), float(args[2]))
    else:
        sys.exit(__doc__)
