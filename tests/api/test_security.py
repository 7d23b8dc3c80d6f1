"""Safe for a LAN: the optional token, security headers, the Host allow-list, nothing about the
server's disk or libraries in answers, checked live input, and the uvicorn configuration."""

import io
import json
import logging
import re
import socket
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from qkatlas import serve
from qkatlas.api.app import create_app
from qkatlas.errors import InvalidInput
from qkatlas.settings import Settings

from .conftest import warmed
from .raw import connect, read_response

TOKEN = "s3cret-Token_42"
INDEX = Path(__file__).parents[2] / "frontend" / "index.html"


def png_bytes(fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# the token


@pytest.fixture(scope="module")
def guarded(settings, atlases):
    with TestClient(create_app(settings.with_(token=TOKEN))) as c:
        yield warmed(c)


def test_with_a_token_live_inference_is_401_without_it_and_200_with_it(guarded, atlases):
    ask = {"atlas": atlases["gpt2"].name, "text": "The cat sat."}
    r = guarded.post("/api/attention", json=ask)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"] and "/?access_token=" in r.json()["detail"]
    assert guarded.post("/api/attention", json=ask, headers={"Authorization": "Bearer nope"}).status_code == 401
    r = guarded.post("/api/attention/image", data={"atlas": atlases["vit"].name},
                     files={"file": ("x.png", png_bytes(), "image/png")})
    assert r.status_code == 401
    r = guarded.post("/api/attention", json=ask, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text


def test_with_a_token_cheap_reads_and_the_page_stay_open(guarded, atlases):
    gpt2 = f"/api/atlases/{atlases['gpt2'].name}"
    for path in ("/", "/healthz", "/readyz", "/api/atlases", gpt2, f"{gpt2}/heads/0/1/points", f"{gpt2}/matrix",
                 f"{gpt2}/heads/0/1/neighbours?token=3", "/api/models", "/vendor/plotly.min.js"):
        assert guarded.get(path).status_code == 200, path


def test_opening_the_page_with_the_token_once_sets_a_cookie_the_page_then_sends(settings, atlases):
    with TestClient(create_app(settings.with_(token=TOKEN))) as c:
        r = warmed(c).get(f"/?atlas=a1&token=7&access_token={TOKEN}&view=live", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "./?atlas=a1&token=7&view=live"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"qkatlas_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get("/?atlas=a1&token=7&view=live").status_code == 200  # the page, its own token= kept
        r = c.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": "Hi."})  # the cookie, no header
        assert r.status_code == 200, r.text
        wrong = TestClient(c.app).get("/?access_token=guess", follow_redirects=False)
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_the_pages_own_token_parameter_is_the_page_state_not_a_login(settings, atlases):
    for token in ("", TOKEN):
        r = TestClient(create_app(settings.with_(token=token))).get("/?view=head&token=31", follow_redirects=False)
        assert r.status_code == 200 and "set-cookie" not in r.headers


def test_a_token_that_cannot_be_a_cookie_is_refused_at_start(settings):
    with pytest.raises(InvalidInput, match="QKATLAS_TOKEN"):
        create_app(settings.with_(token="two words"))


# ---------------------------------------------------------------------------------------
# security headers


def test_the_page_the_api_and_errors_carry_security_headers(client, atlases):
    for r in (client.get("/"), client.get("/api/atlases"), client.get("/api/atlases/nope"),
              client.get("/js/app.js"), client.get("/docs")):
        h = r.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "no-referrer"
        csp = dict(d.strip().split(" ", 1) for d in h["content-security-policy"].split(";"))
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert "'unsafe-inline'" not in csp["script-src"] and "'self'" in csp["script-src"]
        assert "blob:" in csp["img-src"]


def test_the_page_and_the_docs_have_no_inline_script_or_event_handler(client):
    for page in (INDEX.read_text(), client.get("/docs").text):
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
        assert not re.search(r"\son[a-z]+\s*=", page)
    assert client.get("/docs/start.js").headers["content-type"].startswith("text/javascript")


def test_docs_can_be_turned_off(settings, atlases):
    c = TestClient(create_app(settings.with_(docs=False)))
    assert c.get("/docs").status_code == 404 and c.get("/openapi.json").status_code == 404
    assert c.get("/api/atlases").status_code == 200


# ---------------------------------------------------------------------------------------
# the Host allow-list


def test_a_foreign_host_header_is_400(client):
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", ""):
        r = client.get("/api/atlases", headers={"Host": host})
        assert r.status_code == 400 and "QKATLAS_ALLOWED_HOSTS" in r.json()["detail"], host
        assert r.headers["x-content-type-options"] == "nosniff"


def test_localhost_ip_addresses_and_the_allowed_names_are_answered(settings, atlases):
    c = TestClient(create_app(settings.with_(allowed_hosts="atlas.lab, Other.Example")))
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "192.168.1.20", "ATLAS.lab:80",
                 "other.example."):
        assert c.get("/healthz", headers={"Host": host}).status_code == 200, host
    assert c.get("/healthz", headers={"Host": "testserver"}).status_code == 400
    anything = TestClient(create_app(settings.with_(allowed_hosts="*")))
    assert anything.get("/healthz", headers={"Host": "whatever.example"}).status_code == 200


# ---------------------------------------------------------------------------------------
# nothing about the server's disk or libraries


def test_atlases_name_no_absolute_path_and_no_library_version(scratch):
    c, copy = scratch
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"]["weights"] = "/srv/private/models/tiny-gpt2"
    manifest["corpus"]["source"] = "/home/someone/notes/corpus.txt"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    versions = [v for v in manifest["versions"].values() if v.count(".") >= 1]
    assert versions
    for path in ("/api/atlases", f"/api/atlases/{copy.name}", "/api/models"):
        text = c.get(path).text
        assert "/srv/" not in text and "/home/" not in text, path
        assert not any(f'"{v}"' in text for v in versions) and "versions" not in text, path
    summary = c.get(f"/api/atlases/{copy.name}").json()
    assert summary["model"]["weights"] == "tiny-gpt2" and summary["corpus"]["source"] == "corpus.txt"
    assert not any(k.lower().startswith("x-plotly") for k in c.get("/vendor/plotly.min.js").headers)


# ---------------------------------------------------------------------------------------
# live input


@pytest.mark.parametrize("text,words", [
    ("a\\ud800b", ["lone surrogate U+D800", "character 1"]),
    ("\\udc00", ["lone surrogate U+DC00"]),
    ("hi\\u0000", ["control character U+0000", "character 2", "tab, newline"]),
    ("bell \\u0007 ring", ["control character U+0007"]),
])
def test_lone_surrogates_and_control_characters_in_live_text_are_422(client, atlases, text, words):
    body = f'{{"atlas": "{atlases["gpt2"].name}", "text": "{text}"}}'.encode()
    r = client.post("/api/attention", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and all(w in r.json()["detail"] for w in words), r.text


def test_tabs_newlines_and_any_script_are_accepted(client, atlases):
    r = client.post("/api/attention", json={"atlas": atlases["gpt2"].name, "text": "a\tb\r\nc — 猫 🐈"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF", "BMP"])
def test_common_image_formats_are_accepted(client, atlases, fmt):
    r = client.post("/api/attention/image", data={"atlas": atlases["vit"].name},
                    files={"file": (f"x.{fmt.lower()}", png_bytes(fmt), "application/octet-stream")})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("fmt", ["DDS", "IM", "TIFF"])
def test_other_image_formats_are_refused_naming_the_accepted_ones(client, atlases, fmt):
    buf = io.BytesIO()
    Image.new("RGBA" if fmt == "DDS" else "RGB", (32, 32), (1, 2, 3, 4)[: 4 if fmt == "DDS" else 3]).save(buf, fmt)
    r = client.post("/api/attention/image", data={"atlas": atlases["vit"].name},
                    files={"file": (f"x.{fmt.lower()}", buf.getvalue(), "image/png")})
    assert r.status_code == 422 and "PNG, JPEG, WebP, GIF, BMP" in r.json()["detail"], r.text


# ---------------------------------------------------------------------------------------
# the server: uvicorn's configuration and the port check


def test_the_real_server_sends_no_banner_and_security_headers(server):
    r = httpx.get(f"{server}/api/atlases", timeout=10)
    assert "server" not in r.headers and "date" in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"


def test_headers_that_do_not_arrive_in_time_close_the_connection(server, monkeypatch):
    monkeypatch.setattr(serve, "HEADER_TIMEOUT_S", 0.3)
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        assert sock.recv(1024) == b""  # closed by the server, long before the socket's 10 s timeout
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_headers_are_not_buffered_beyond_16_kib(server):
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (20 * 1024))  # and on...
        assert read_response(sock)[0] == 400


def time_wait_port() -> int:
    """A loopback port whose server side just closed a connection first: it is in TIME_WAIT.
    The listener has SO_REUSEADDR, as uvicorn's (asyncio's) has."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first, as a stopped server does
    client.close()
    listener.close()
    return port


def test_the_port_check_accepts_a_port_a_stopped_server_just_left():
    port = time_wait_port()
    serve.check_port_free(Settings(host="127.0.0.1", port=port))  # no "address already in use"


def test_the_port_check_refuses_a_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(InvalidInput, match="cannot listen on 127.0.0.1"):
            serve.check_port_free(Settings(host="127.0.0.1", port=taken.getsockname()[1]))


def test_listening_on_every_interface_without_a_token_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="qkatlas"):
        serve.warn_if_open(Settings(host="0.0.0.0"))
        serve.warn_if_open(Settings(host="0.0.0.0", token=TOKEN))
        serve.warn_if_open(Settings(host="127.0.0.1"))
    assert len(caplog.records) == 1 and "QKATLAS_TOKEN" in caplog.records[0].getMessage()
