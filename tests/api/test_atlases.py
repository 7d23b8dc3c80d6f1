import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .stored import manifest

ARROW = "application/vnd.apache.arrow.stream"


def test_list_has_a_summary_of_every_atlas(client, atlases):
    body = {a["id"]: a for a in client.get("/api/atlases").json()}
    for path in atlases.values():
        assert path.name in body
    a = body[atlases["gpt2"].name]
    m = manifest(atlases["gpt2"])
    assert {k: a[k] for k in ("layers", "heads", "head_dim", "tokens", "causal")} == \
        {k: m[k] for k in ("layers", "heads", "head_dim", "tokens", "causal")}
    assert a["model"]["id"] == "tiny-gpt2" and a["model"]["random"] is True
    assert a["corpus"] == {"id": "default", "modality": "text", "items": 24, "source": m["corpus"]["source"]}
    assert a["modality"] == "text" and a["total_heads"] == 8
    assert a["projections"] == {"pca-2d": 8, "pca-3d": 8}
    assert a["complete"] == {"pca-2d": True, "pca-3d": True}


def test_detail_adds_quality_image_and_scaling(client, atlases, gpt2, vit):
    a = client.get(gpt2).json()
    assert set(a["quality"]) == {"pca-2d", "pca-3d"}
    assert set(a["quality"]["pca-2d"]) == {f"L{l:02d}H{h:02d}" for l in range(2) for h in range(4)}
    assert 0 <= a["quality"]["pca-2d"]["L01H02"]["trustworthiness@10"] <= 1
    assert a["image"] is None and a["scaling"] == manifest(atlases["gpt2"])["scaling"]
    m = manifest(atlases["gpt2"])
    assert a["created"] == m["created"] and "versions" not in a  # versions stay in the manifest
    stored = json.loads((atlases["gpt2"] / "projections" / "pca-3d" / "L01H02.json").read_text())
    assert a["quality"]["pca-3d"]["L01H02"] == stored["quality"]
    assert client.get(vit).json()["image"] == {"size": 64, "patch": 16, "grid": 4, "prefix_tokens": 1}


def test_unknown_atlas_is_404_naming_the_atlases_there_are(client, atlases):
    r = client.get("/api/atlases/a%2Fb")  # a/b: no route has that shape
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    for name in ("nope", "...", ".hidden", "a%00b", "x" * 300):
        r = client.get(f"/api/atlases/{name}")
        assert r.status_code == 404, name
        assert atlases["gpt2"].name in r.json()["detail"]
    assert "unknown atlas 'nope'" in client.get("/api/atlases/nope/matrix").json()["detail"]


def test_tokens_json_is_the_stored_table_column_by_column(client, atlases, gpt2):
    body = client.get(f"{gpt2}/tokens").json()
    stored = pq.read_table(atlases["gpt2"] / "tokens.parquet")
    assert body["n"] == stored.num_rows
    assert list(body["columns"]) == ["token", "item", "position", "text", "special", "row", "col"]
    assert body["columns"] == stored.select(list(body["columns"])).to_pydict()


def test_tokens_arrow_round_trips_by_format_and_by_accept(client, atlases, gpt2):
    stored = pq.read_table(atlases["gpt2"] / "tokens.parquet")
    for r in (client.get(f"{gpt2}/tokens?format=arrow"), client.get(f"{gpt2}/tokens", headers={"Accept": ARROW})):
        assert r.headers["content-type"] == ARROW
        table = pa.ipc.open_stream(r.content).read_all()
        assert table.equals(stored.select(table.column_names))
    assert client.get(f"{gpt2}/tokens?format=json", headers={"Accept": ARROW}).json()["n"] == stored.num_rows


def test_items_give_text_label_token_count_and_first_row(client, atlases, gpt2):
    body = client.get(f"{gpt2}/items").json()
    cols = body["columns"]
    assert body["n"] == 24 and list(cols) == ["item", "text", "label", "tokens", "offset"]
    items = np.asarray(pq.read_table(atlases["gpt2"] / "tokens.parquet").column("item"))
    assert cols["tokens"] == np.bincount(items).tolist()
    assert cols["offset"] == [int(np.flatnonzero(items == i)[0]) for i in range(24)]
    assert cols["text"][0] == "The cat sat on the mat."
    table = pa.ipc.open_stream(client.get(f"{gpt2}/items?format=arrow").content).read_all()
    assert table.to_pydict() == cols


def test_tables_have_an_etag_and_answer_304(client, gpt2):
    r = client.get(f"{gpt2}/tokens")
    assert r.headers["cache-control"] == "public, max-age=3600"
    again = client.get(f"{gpt2}/tokens", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    arrow = client.get(f"{gpt2}/tokens?format=arrow")
    assert arrow.headers["etag"] != r.headers["etag"]


def test_table_errors(client, gpt2):
    r = client.get(f"{gpt2}/tokens?format=csv")
    assert r.status_code == 422 and "'format'" in r.json()["detail"] and "arrow" in r.json()["detail"]


def test_an_atlas_copied_in_while_serving_is_found(scratch, atlases):
    c, copy = scratch
    late = copy.parent / atlases["bert"].name
    r = c.get(f"/api/atlases/{late.name}")
    assert r.status_code == 404 and r.json()["detail"] == f"unknown atlas {late.name!r}; available atlases: {copy.name}"
    shutil.copytree(atlases["bert"], late)
    body = c.get(f"/api/atlases/{late.name}").json()
    assert body["id"] == late.name and body["model"]["id"] == "tiny-bert"
    assert [a["id"] for a in c.get("/api/atlases").json()] == sorted([copy.name, late.name])


def test_a_rewritten_manifest_is_read_again(scratch):
    c, copy = scratch
    url = f"/api/atlases/{copy.name}"
    assert c.get(url).json()["created"] != "later"
    m = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**m, "created": "later"}))
    assert c.get(url).json()["created"] == "later"


# ---------------------------------------------------------------------------------------
# a damaged atlas is listed as damaged; the others serve


def test_an_atlas_whose_manifest_is_not_json_is_listed_damaged_and_the_others_serve(scratch_pair):
    c, copies = scratch_pair
    bert, gpt2 = copies["bert"].name, copies["gpt2"].name
    good = (copies["bert"] / "manifest.json").read_bytes()
    (copies["bert"] / "manifest.json").write_text('{"atlas": ')
    listed = {a["id"]: a for a in c.get("/api/atlases").json()}
    assert set(listed[bert]) == {"id", "status", "detail"} and listed[bert]["status"] == "damaged"
    detail = listed[bert]["detail"]
    assert detail.startswith(f"atlas {bert!r} is damaged: manifest.json (Invalid JSON") and "qkatlas build" in detail
    assert listed[gpt2]["status"] == "ok" and listed[gpt2]["model"]["id"] == "tiny-gpt2"
    r = c.get(f"/api/atlases/{bert}")
    assert r.status_code == 503 and r.json() == {"detail": detail}
    assert c.get(f"/api/atlases/{bert}/tokens").json() == {"detail": detail}
    assert c.get(f"/api/atlases/{gpt2}").status_code == 200
    assert c.get(f"/api/atlases/{gpt2}/heads/1/2/points").status_code == 200
    (copies["bert"] / "manifest.json").write_bytes(good)  # repaired: served again
    assert {a["id"]: a["status"] for a in c.get("/api/atlases").json()} == {bert: "ok", gpt2: "ok"}
    assert c.get(f"/api/atlases/{bert}").status_code == 200


def test_an_atlas_whose_manifest_lacks_a_field_is_listed_damaged_naming_the_field(scratch_pair):
    c, copies = scratch_pair
    m = json.loads((copies["bert"] / "manifest.json").read_text())
    del m["layers"]
    (copies["bert"] / "manifest.json").write_text(json.dumps(m))
    listed = {a["id"]: a for a in c.get("/api/atlases").json()}
    assert listed[copies["bert"].name]["detail"].startswith(
        f"atlas {copies['bert'].name!r} is damaged: manifest.json (layers: Field required)")


def test_an_atlas_whose_token_table_is_truncated_while_served_is_listed_damaged(scratch_pair):
    c, copies = scratch_pair
    bert = copies["bert"].name
    assert c.get(f"/api/atlases/{bert}").status_code == 200  # opened and checked first
    tokens = copies["bert"] / "tokens.parquet"
    tokens.write_bytes(tokens.read_bytes()[:100])
    listed = {a["id"]: a for a in c.get("/api/atlases").json()}
    detail = listed[bert]["detail"]
    assert listed[bert]["status"] == "damaged" and detail.startswith(f"atlas {bert!r} is damaged: tokens.parquet (")
    r = c.get(f"/api/atlases/{bert}")
    assert r.status_code == 503 and r.json() == {"detail": detail}
    assert listed[copies["gpt2"].name]["status"] == "ok"


def test_a_complete_layout_whose_first_head_is_gone_or_garbage_is_damage(scratch_pair):
    c, copies = scratch_pair
    gpt2 = copies["gpt2"].name
    head = copies["gpt2"] / "projections" / "pca-2d" / "L00H00.npy"
    saved = head.read_bytes()
    head.unlink()
    r = c.get(f"/api/atlases/{gpt2}")
    assert r.status_code == 503
    assert r.json()["detail"].startswith(f"atlas {gpt2!r} is damaged: projections/pca-2d/L00H00.npy (missing; "
                                         "the manifest records its layout complete)")
    head.write_bytes(saved[:60])
    r = c.get(f"/api/atlases/{gpt2}")
    assert r.status_code == 503 and "projections/pca-2d/L00H00.npy (" in r.json()["detail"]
    head.write_bytes(saved)
    assert c.get(f"/api/atlases/{gpt2}").status_code == 200
