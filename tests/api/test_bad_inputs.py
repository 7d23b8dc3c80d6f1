"""Every bad input tried, against the real app, with the status and the message it gets.

`CASES` is the table: what was tried, how, the status it must get and words its message must
hold. Each case runs once (the `observed` fixture); the tests check each answer, that no answer
names a folder of the server, and that docs/bad-inputs.md is exactly the table as the server
answered it. When a message changes on purpose, rewrite the document with

    UPDATE_DOCS=1 .venv/bin/python -m pytest tests/api/test_bad_inputs.py -p no:cacheprovider
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from qkatlas.api.app import create_app
from qkatlas.serve import serve_in_thread
from qkatlas.settings import Settings

from .conftest import with_catalog_entry
from .raw import chunked, post_streaming

DOC = Path(__file__).parents[2] / "docs" / "bad-inputs.md"
TOKEN = "s3cret-Token_42"


@dataclass(frozen=True)
class Observed:
    request: str  # what was sent, for people
    status: int
    detail: str


@dataclass
class Env:
    """What the cases run against: the real server over copies of the tiny text and image atlases."""

    url: str
    settings: Settings  # the server's
    sources: dict[str, Path]  # "text", "image": the session's atlases, to copy and damage
    tmp: Path

    @property
    def text(self) -> str:
        return self.sources["text"].name

    @property
    def image(self) -> str:
        return self.sources["image"].name


def observed(request: str, r: httpx.Response) -> Observed:
    try:
        detail = r.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = r.text
    return Observed(request, r.status_code, detail)


# ---------------------------------------------------------------------------------------
# how a case asks


def get(e: Env, path: str, client=None) -> Observed:
    r = (client or httpx.Client(base_url=e.url, timeout=60)).get(path)
    return observed(f"GET {path}", r)


def shown(value):
    """A JSON value as the table shows it: a long text as its start and its length."""
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:12]}… ({len(value)} characters)"
    return value


def post_json(e: Env, body: dict, client=None, headers: dict | None = None) -> Observed:
    r = (client or httpx.Client(base_url=e.url, timeout=120)).post("/api/attention", json=body, headers=headers)
    sent = json.dumps({k: shown(v) for k, v in body.items()}, ensure_ascii=False)
    return observed(f"POST /api/attention {sent}" + "".join(f", {k}: {v}" for k, v in (headers or {}).items()), r)


def post_bytes(e: Env, body: bytes, content_type: str = "application/json") -> Observed:
    with httpx.Client(base_url=e.url, timeout=60) as http:
        r = http.post("/api/attention", content=body, headers={"Content-Type": content_type})
    shown = body.decode("utf-8", "backslashreplace")
    return observed(f"POST /api/attention ({content_type}) {shown[:100]}", r)


def upload(e: Env, atlas: str, name: str, data: bytes, **form) -> Observed:
    with httpx.Client(base_url=e.url, timeout=120) as http:
        r = http.post("/api/attention/image", data={"atlas": atlas, **form},
                      files={"file": (name, data, "application/octet-stream")})
    return observed(f"POST /api/attention/image atlas={atlas}, file {name} ({len(data)} bytes)", r)


def streamed(e: Env, path: str, headers: dict[str, str], chunks, shown: str) -> Observed:
    status, _, body, _, _ = post_streaming(e.url, path, headers, chunks)
    return Observed(f"POST {path} {shown}", status, json.loads(body)["detail"])


def image_bytes(fmt: str, size=(32, 32), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels and that holds no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def copy_atlas(e: Env, slug: str, which: str = "text") -> Path:
    """A copy of one atlas in a data dir of its own (named `slug`), for a case to change."""
    copy = e.tmp / slug / e.sources[which].name
    shutil.copytree(e.sources[which], copy)
    return copy


def app_on(e: Env, data: Path, **changes) -> TestClient:
    """The real app over data dir `data` (lifespan off: no model is warmed up for these)."""
    return TestClient(create_app(e.settings.with_(data_dir=data, allowed_hosts="testserver", **changes)))


def on_damaged(e: Env, slug: str, damage: Callable[[Path], None], path: str, which: str = "text",
               read_first: bool = False) -> Observed:
    """GET `path` ("{atlas}" for the atlas id) from an app over a copy of the atlas `damage` changed;
    with read_first, the app has answered `path` once before the change (the file changes under it)."""
    copy = copy_atlas(e, slug, which)
    client = app_on(e, copy.parent)
    path = path.format(atlas=copy.name)
    if read_first:
        assert client.get(path).status_code == 200
    damage(copy)
    return get(e, path, client)


def cut(rel: str, keep: int | None = None) -> Callable[[Path], None]:
    """Truncate file `rel` to `keep` bytes (default: half of it)."""
    def damage(atlas: Path) -> None:
        data = (atlas / rel).read_bytes()
        (atlas / rel).write_bytes(data[: len(data) // 2 if keep is None else keep])
    return damage


def overwrite(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda atlas: (atlas / rel).write_bytes(data)


def remove(rel: str) -> Callable[[Path], None]:
    return lambda atlas: (atlas / rel).unlink()


def without_field(field: str) -> Callable[[Path], None]:
    def damage(atlas: Path) -> None:
        manifest = json.loads((atlas / "manifest.json").read_text())
        del manifest[field]
        (atlas / "manifest.json").write_text(json.dumps(manifest))
    return damage


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def absent_model(e: Env, slug: str, shared: str | None = None) -> Observed:
    """A live request to a copy of the text atlas whose model is a catalog entry with no weights
    here (offline); `shared`: a broken model folder of that name in the shared models folder."""
    copy = copy_atlas(e, slug)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "model": {**manifest["model"], "id": "absent-model"}}))
    settings = with_catalog_entry(e.settings, e.tmp / slug, "\n".join([
        'id = "absent-model"', 'label = "absent"', 'family = "gpt2"', 'modality = "text"',
        'loader = "transformers"', 'source = "qkatlas-tests/absent-model"', 'local = ["absent-model"]']))
    changes = {"catalog_dir": settings.catalog_dir}
    if shared:
        folder = e.tmp / slug / "shared" / "absent-model"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(shared)
        changes["shared_models"] = folder.parent
    return post_json(e, {"atlas": copy.name, "text": "Hello."}, app_on(e, copy.parent, **changes))


# ---------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Case:
    group: str
    what: str
    status: int
    says: tuple[str, ...]  # words the message holds
    ask: Callable[[Env], Observed]


BODIES, TEXT, UPLOADS, PARTS, ACCESS, FILES, MODELS = (
    "Request bodies", "Live text", "Uploads", "Atlases, heads, tokens, items", "Access", "Damaged atlas files",
    "Models")
POINTS = "/api/atlases/{atlas}/heads/1/2/points"

CASES = [
    # -- request bodies: bounded before they are read -----------------------------------
    Case(BODIES, "a JSON body declared 300 MB", 413, ("314572800 bytes", "65536 bytes (max_json_bytes)"),
         lambda e: streamed(e, "/api/attention", {"Content-Type": "application/json", "Content-Length": str(300 << 20)},
                            [b'{"atlas": "x", "text": "'], "Content-Length: 314572800")),
    Case(BODIES, "an upload declared 300 MB", 413, ("max_upload_bytes",),
         lambda e: streamed(e, "/api/attention/image", {"Content-Type": "multipart/form-data; boundary=b",
                                                         "Content-Length": str(300 << 20)}, [b"--b\r\n"],
                            "multipart, Content-Length: 314572800")),
    Case(BODIES, "a chunked JSON body without a length that goes on (4 MB)", 413, ("larger than the limit",),
         lambda e: streamed(e, "/api/attention", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                            chunked(b'{"atlas": "x", "text": "' + b"a" * (4 << 20) + b'"}', 8192),
                            "Transfer-Encoding: chunked, 4 MB")),
    Case(BODIES, "malformed JSON", 422, ("not valid JSON",),
         lambda e: post_bytes(e, b'{"atlas": "x", "text": ')),
    Case(BODIES, "a JSON array instead of an object", 422, ("the request body", "[1, 2]"),
         lambda e: post_bytes(e, b"[1, 2]")),
    Case(BODIES, "a body that is not JSON", 422, ("the request body",),
         lambda e: post_bytes(e, b"atlas=x&text=hi", "text/plain")),
    Case(BODIES, "a required field left out", 422, ("'text' is required",),
         lambda e: post_json(e, {"atlas": e.text})),
    Case(BODIES, "a field of the wrong type", 422, ("'layer'", "'one'"),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi.", "layer": "one"})),
    # -- live text ----------------------------------------------------------------------
    Case(TEXT, "a lone surrogate in the text", 422, ("lone surrogate U+D800", "character 1"),
         lambda e: post_bytes(e, f'{{"atlas": "{e.text}", "text": "a\\ud800b"}}'.encode())),
    Case(TEXT, "a control character in the text", 422, ("control character U+0007", "tab, newline"),
         lambda e: post_bytes(e, f'{{"atlas": "{e.text}", "text": "bell \\u0007 ring"}}'.encode())),
    Case(TEXT, "an empty text", 422, ("text is empty",),
         lambda e: post_json(e, {"atlas": e.text, "text": "   "})),
    Case(TEXT, "a text longer than max_text_chars", 413, ("2001 characters", "max_text_chars"),
         lambda e: post_json(e, {"atlas": e.text, "text": "a" * 2001})),
    Case(TEXT, "a text of more tokens than max_text_tokens", 413, ("the limit is 256 tokens", "max_text_tokens"),
         lambda e: post_json(e, {"atlas": e.text, "text": " ".join(["word"] * 300)})),
    Case(TEXT, "every layer's attention of a long text as JSON", 422, ("500000 values", "'binary'"),
         lambda e: post_json(e, {"atlas": e.text, "text": " ".join(["word"] * 250)})),
    Case(TEXT, "an unknown scope", 422, ("'scope'", "'model'"),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi.", "scope": "model"})),
    Case(TEXT, "scope 'layer' without a layer", 422, ("scope 'layer'", "give its layer"),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi.", "scope": "layer"})),
    Case(TEXT, "a layer the model does not have", 404, ("layer 9", "valid layers: 0..1"),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi.", "layer": 9, "head": 0})),
    Case(TEXT, "an unknown reduction method to place the text in", 404, ("unknown method 'kmeans'", "pca"),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi.", "layer": 0, "head": 0, "method": "kmeans"})),
    Case(TEXT, "an unknown atlas", 404, ("unknown atlas 'nope'", "available atlases"),
         lambda e: post_json(e, {"atlas": "nope", "text": "Hi."})),
    Case(TEXT, "text to an image atlas", 422, ("holds image, not text", "/api/attention/image"),
         lambda e: post_json(e, {"atlas": e.image, "text": "Hi."})),
    # -- uploads --------------------------------------------------------------------------
    *[Case(UPLOADS, f"an image in {fmt} (outside the accepted formats)", 422, ("PNG, JPEG, WebP, GIF, BMP",),
           lambda e, fmt=fmt: upload(e, e.image, f"x.{fmt.lower()}",
                                     image_bytes(fmt, mode="RGBA" if fmt == "DDS" else "RGB")))
      for fmt in ("DDS", "IM", "TIFF")],
    Case(UPLOADS, "a file that is not an image", 422, ("not a readable image",),
         lambda e: upload(e, e.image, "notes.txt", b"The cat sat on the mat.\n" * 4)),
    Case(UPLOADS, "an empty file", 422, ("the uploaded file is empty",),
         lambda e: upload(e, e.image, "empty.png", b"")),
    Case(UPLOADS, "an image of 5000 x 4000 pixels", 413, ("5000x4000 = 20000000 pixels", "max_image_pixels"),
         lambda e: upload(e, e.image, "wide.png", image_bytes("PNG", (5000, 4000), "1"))),
    Case(UPLOADS, "a PNG whose header claims 100000 x 100000 pixels", 413, ("too many pixels", "max_image_pixels"),
         lambda e: upload(e, e.image, "bomb.png", png_claiming(100_000, 100_000))),
    Case(UPLOADS, "an upload over max_upload_bytes within the form's allowance", 413, ("8388608 bytes",),
         lambda e: upload(e, e.image, "big.bmp", b"\0" * (8 * 1024 * 1024 + 1024))),
    Case(UPLOADS, "an image to a text atlas", 422, ("holds text, not image", "/api/attention"),
         lambda e: upload(e, e.text, "x.png", image_bytes("PNG"))),
    Case(UPLOADS, "a form without its file", 422, ("'file' is required",),
         lambda e: observed("POST /api/attention/image atlas=..., no file",
                            httpx.post(f"{e.url}/api/attention/image", data={"atlas": e.image}, timeout=60))),
    # -- atlases and their parts --------------------------------------------------------
    Case(PARTS, "an unknown atlas", 404, ("unknown atlas 'nope'", "available atlases: "),
         lambda e: get(e, "/api/atlases/nope")),
    Case(PARTS, "the server's own versions folder as an atlas", 404, ("unknown atlas '.versions'",),
         lambda e: get(e, "/api/atlases/.versions/tokens")),
    Case(PARTS, "a layer that does not exist", 404, ("layer 9", "valid layers: 0..1"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/9/0/points")),
    Case(PARTS, "a head that does not exist", 404, ("head 4", "valid heads: 0..3"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/4/points")),
    Case(PARTS, "a negative layer", 404, ("layer -1",),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/-1/0")),
    Case(PARTS, "a layer that is not a number", 422, ("'layer'", "'abc'", "integer"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/abc/0/points")),
    Case(PARTS, "a token that does not exist", 404, ("token 99999", "valid tokens: 0.."),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/neighbours?token=99999")),
    Case(PARTS, "an item that does not exist", 404, ("item 999", "valid items: 0..23"),
         lambda e: get(e, f"/api/atlases/{e.text}/items/999/attention?layer=0")),
    Case(PARTS, "an unknown reduction method", 404, ("unknown method 'kmeans'", "pca, umap, tsne"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/points?method=kmeans")),
    Case(PARTS, "a dimension other than 2 or 3", 422, ("'dim'", "'4'"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/points?dim=4")),
    Case(PARTS, "a layout not built yet", 409, ("not computed yet", "heads done: 0 of 8"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/points?method=umap")),
    Case(PARTS, "more neighbours than allowed", 422, ("'k'", "1000"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/neighbours?token=1&k=100000")),
    Case(PARTS, "an unknown side", 422, ("'side'", "'middle'"),
         lambda e: get(e, f"/api/atlases/{e.text}/heads/0/0/vectors?side=middle")),
    Case(PARTS, "an unknown table format", 422, ("'format'", "'csv'"),
         lambda e: get(e, f"/api/atlases/{e.text}/tokens?format=csv")),
    Case(PARTS, "the image of a text atlas", 404, ("holds text: it has no images",),
         lambda e: get(e, f"/api/atlases/{e.text}/items/0/image")),
    Case(PARTS, "a patch that does not exist", 404, ("17",),
         lambda e: get(e, f"/api/atlases/{e.image}/items/0/patches/17/image")),
    Case(PARTS, "an unknown API path", 404, ("Not Found",),
         lambda e: get(e, "/api/nothing-here")),
    # -- access ---------------------------------------------------------------------------
    Case(ACCESS, "a Host header the server does not answer to", 400, ("unknown Host 'evil.example'",
                                                                       "QKATLAS_ALLOWED_HOSTS"),
         lambda e: observed("GET /api/atlases, Host: evil.example",
                            httpx.get(f"{e.url}/api/atlases", headers={"Host": "evil.example"}, timeout=60))),
    Case(ACCESS, "live inference without the token QKATLAS_TOKEN asks for", 401, ("Authorization: Bearer",),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi."}, app_on(e, e.sources["text"].parent, token=TOKEN))),
    Case(ACCESS, "live inference with a wrong token", 401, ("Authorization: Bearer",),
         lambda e: post_json(e, {"atlas": e.text, "text": "Hi."}, app_on(e, e.sources["text"].parent, token=TOKEN),
                             headers={"Authorization": "Bearer guess"})),
    # -- damaged files: that atlas says so (503, the file named), the others serve --------
    Case(FILES, "manifest.json that is not JSON", 503, ("is damaged: manifest.json (Invalid JSON",),
         lambda e: on_damaged(e, "manifest-json", overwrite("manifest.json", b'{"atlas": '), "/api/atlases/{atlas}")),
    Case(FILES, "manifest.json without a field it needs", 503, ("is damaged: manifest.json (heads: Field required)",),
         lambda e: on_damaged(e, "manifest-field", without_field("heads"), "/api/atlases/{atlas}")),
    Case(FILES, "the token table cut short", 503, ("is damaged: tokens.parquet (", "magic bytes not found"),
         lambda e: on_damaged(e, "tokens-cut", cut("tokens.parquet", 100), "/api/atlases/{atlas}/tokens")),
    Case(FILES, "the token table cut short while the server serves it", 503, ("is damaged: tokens.parquet (",),
         lambda e: on_damaged(e, "tokens-served", cut("tokens.parquet", 100), "/api/atlases/{atlas}",
                              read_first=True)),
    Case(FILES, "the item table gone", 503, ("is damaged: items.parquet (missing)",),
         lambda e: on_damaged(e, "items-gone", remove("items.parquet"), "/api/atlases/{atlas}/items")),
    Case(FILES, "a vectors file cut short", 503, ("is damaged: vectors/q_L01.npy (",),
         lambda e: on_damaged(e, "vectors-cut", cut("vectors/q_L01.npy"),
                              "/api/atlases/{atlas}/heads/1/2/vectors?side=query")),
    Case(FILES, "a vector-means file of garbage", 503, ("is damaged: vectors/kmean_L00.npy (not a numpy file",),
         lambda e: on_damaged(e, "means-garbage", overwrite("vectors/kmean_L00.npy", b"\0garbage" * 10),
                              "/api/atlases/{atlas}/heads/0/1/vectors?side=key")),
    Case(FILES, "the joint transforms of garbage", 503, ("is damaged: joint.npz (not a numpy file",),
         lambda e: on_damaged(e, "joint-garbage", overwrite("joint.npz", b"\0garbage" * 10),
                              "/api/atlases/{atlas}/heads/0/1/norms")),
    Case(FILES, "a projection cut short", 503, ("is damaged: projections/pca-2d/L01H02.npy (",),
         lambda e: on_damaged(e, "projection-cut", cut("projections/pca-2d/L01H02.npy"), POINTS)),
    Case(FILES, "a projection of the wrong shape", 503, ("shape (7, 2), expected",),
         lambda e: on_damaged(e, "projection-shape", overwrite("projections/pca-2d/L01H02.npy",
                                                               npy(np.zeros((7, 2), np.float32))), POINTS)),
    Case(FILES, "a projection's metadata of garbage", 503, ("is damaged: projections/pca-2d/L01H02.json (",),
         lambda e: on_damaged(e, "meta-garbage", overwrite("projections/pca-2d/L01H02.json", b"{not json"),
                              "/api/atlases/{atlas}/heads/1/2")),
    Case(FILES, "the first head of a complete layout gone", 503, ("L00H00.npy (missing; the manifest records",),
         lambda e: on_damaged(e, "head-gone", remove("projections/pca-2d/L00H00.npy"), "/api/atlases/{atlas}")),
    Case(FILES, "a stored image of garbage", 503, ("is damaged: images/00002.png (not a readable PNG image",),
         lambda e: on_damaged(e, "image-garbage", overwrite("images/00002.png", b"\x89PNG garbage"),
                              "/api/atlases/{atlas}/items/2/image", which="image")),
    Case(FILES, "a stored image cut short, asked for a patch", 503,
         ("is damaged: images/00002.png (not a readable PNG image",),
         lambda e: on_damaged(e, "image-cut", cut("images/00002.png"),
                              "/api/atlases/{atlas}/items/2/patches/5/image", which="image")),
    Case(FILES, "a stored image gone", 404, ("item 2", "has no stored image"),
         lambda e: on_damaged(e, "image-gone", remove("images/00002.png"), "/api/atlases/{atlas}/items/2/image",
                              which="image")),
    # -- models -----------------------------------------------------------------------------
    Case(MODELS, "live input for a model whose weights are not on the server (offline)", 503,
         ("model 'absent-model'", "hf download qkatlas-tests/absent-model"),
         lambda e: absent_model(e, "absent")),
    Case(MODELS, "live input for a model whose folder holds no model", 503,
         ("model 'absent-model'", "…/absent-model could not be loaded"),
         lambda e: absent_model(e, "broken", shared="{}")),
]


# ---------------------------------------------------------------------------------------
# running it


@pytest.fixture(scope="module")
def env(settings, atlases, tmp_path_factory):
    """The real server on loopback over a data dir of its own (so that "available atlases" lists
    the same two every run), its live models loaded."""
    data = tmp_path_factory.mktemp("bad-inputs") / "data"
    sources = {"text": data / atlases["gpt2"].name, "image": data / atlases["vit"].name}
    for which, copy in sources.items():
        shutil.copytree(atlases["gpt2" if which == "text" else "vit"], copy)
    served = settings.with_(data_dir=data)
    with serve_in_thread(served) as url:
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 120
            while http.get("/readyz").json().get("warming"):
                assert time.monotonic() < deadline, "the live models did not load"
                time.sleep(0.05)
        yield Env(url, served, sources, tmp_path_factory.mktemp("bad-inputs-copies"))


@pytest.fixture(scope="module")
def answers(env) -> dict[str, Observed]:
    """Every case's answer, asked once."""
    return {case.what + case.group: case.ask(env) for case in CASES}


def test_every_case_is_named_once():
    names = [case.what + case.group for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}: {c.what}" for c in CASES])
def test_every_bad_input_gets_its_status_and_a_message_naming_it(case, answers):
    got = answers[case.what + case.group]
    assert got.status == case.status, got
    assert all(word in got.detail for word in case.says), got


def test_no_answer_names_a_folder_of_the_server(answers, env):
    roots = {str(env.tmp), str(env.settings.data_dir), str(env.settings.shared_models), str(Path.home()),
             str(Path.cwd()), "/root", "/work", "/tmp", "/home"}
    for got in answers.values():
        assert not any(root in got.detail for root in roots), got


def render(answers: dict[str, Observed]) -> str:
    """docs/bad-inputs.md: the cases, group by group, as the server answered them."""
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    lines = ["# Every bad input tried", "",
             "What the server answers to each bad input, as observed by `tests/api/test_bad_inputs.py`, which",
             "tries every row against the real server (on loopback, default settings) over the tiny test",
             "atlases `tiny-gpt2__default-n24` (text, 2 layers x 4 heads, 24 sentences, PCA only) and",
             "`tiny-vit__images-n6` (images). A test fails when this file differs from what the server",
             "answered; rewrite it with",
             "",
             "```bash",
             "UPDATE_DOCS=1 .venv/bin/python -m pytest tests/api/test_bad_inputs.py -p no:cacheprovider",
             "```",
             "",
             "Every answer is JSON `{\"detail\": \"<message>\"}`; none is a 500, and none names a folder of",
             "the server (a model folder is named by its last part, `…/name`). An atlas with a damaged file",
             "answers 503 for the requests that need that file, is listed by `GET /api/atlases` as",
             "`{\"id\", \"status\": \"damaged\", \"detail\"}` when the file is its manifest, token table or first",
             "complete layout, and is not counted ready by `/readyz`; the other atlases keep serving."]
    for group in dict.fromkeys(case.group for case in CASES):
        lines += ["", f"## {group}", "", "| what was tried | request | status | message |", "|---|---|---|---|"]
        for case in (c for c in CASES if c.group == group):
            got = answers[case.what + case.group]
            lines.append(f"| {cell(case.what)} | `{cell(got.request)}` | {got.status} | {cell(got.detail)} |")
    return "\n".join(lines) + "\n"


def test_the_bad_inputs_document_is_what_the_server_answered(answers):
    wanted = render(answers)
    if os.environ.get("UPDATE_DOCS") == "1":
        DOC.write_text(wanted)
    assert DOC.exists() and DOC.read_text() == wanted, \
        "docs/bad-inputs.md is out of date: UPDATE_DOCS=1 .venv/bin/python -m pytest tests/api/test_bad_inputs.py"
