import json

import numpy as np
import pyarrow as pa
import pytest

from qkatlas.errors import NotFound, NotReady, StorageError, UnknownAtlas
from qkatlas.files import atomic_path
from qkatlas.layout import Layout
from qkatlas.manifest import CorpusBlock, Manifest, ModelBlock, read_manifest
from qkatlas.store import Atlas, AtlasWriter, atlas_id, list_atlases, open_atlas

PCA2, UMAP2 = Layout("pca", 2), Layout("umap", 2)


def small_manifest(**changes) -> Manifest:
    return Manifest(atlas="a", model=ModelBlock(id="m", label="M", family="bert", modality="text"),
                    corpus=CorpusBlock(id="c", modality="text", hash="h", items=2),
                    layers=2, heads=3, head_dim=4, tokens=5, scaling=[0.5, 0.5], **changes)


def _write_small(path):
    w = AtlasWriter(path)
    w.write_manifest(small_manifest())
    w.write_tokens(pa.table({"token": np.arange(5), "item": [0, 0, 0, 1, 1], "position": [0, 1, 2, 0, 1],
                             "text": list("abcde"), "special": [False] * 5, "row": [-1] * 5, "col": [-1] * 5}))
    w.write_items(pa.table({"item": [0, 1], "text": ["abc", "de"], "image": ["", ""], "label": ["x", "y"]}))
    rng = np.random.default_rng(0)
    for layer in range(2):
        w.write_vectors(layer, rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 4)), scaling=0.5)
    w.write_joint(np.zeros((2, 3, 4)), np.ones((2, 3)))
    return w


def test_atlas_round_trip_with_float16_vectors(tmp_path):
    w = _write_small(tmp_path / "a")
    coords = np.arange(20, dtype=np.float32).reshape(10, 2)
    w.write_projection(1, 2, PCA2, coords, {"quality": {"knn_recall@10": 0.5}})
    atlas = Atlas(tmp_path / "a")
    assert atlas.queries(0).dtype == np.float32 and atlas.queries(0).shape == (5, 3, 4)
    np.testing.assert_array_equal(atlas.projection(1, 2, PCA2), coords)
    assert atlas.progress() == {"pca-2d": 1}
    assert atlas.heads_done(UMAP2) is None and not atlas.is_complete(PCA2)
    assert atlas.quality_table(PCA2) == {"L01H02": {"knn_recall@10": 0.5}}
    assert atlas.projection_meta(1, 2, PCA2)["quality"] == {"knn_recall@10": 0.5}
    assert atlas.projection_meta(0, 0, PCA2) is None
    np.testing.assert_array_equal(atlas.item_offsets, [0, 3, 5])


def test_missing_projection_and_bad_head_are_clear_errors(tmp_path):
    _write_small(tmp_path / "a")
    atlas = Atlas(tmp_path / "a")
    with pytest.raises(NotReady, match="umap 2-D of layer 0 head 0 .*not computed yet; heads done: 0 of 6"):
        atlas.projection(0, 0, UMAP2)
    with pytest.raises(NotFound, match="layer 7 does not exist.*0..1"):
        atlas.projection(7, 0, PCA2)
    with pytest.raises(NotFound, match="head 3 does not exist.*0..2"):
        atlas.check_head(0, 3)
    with pytest.raises(NotFound, match="unknown method 'lda'"):
        Layout.of("lda", 2)
    with pytest.raises(NotFound, match="unknown dim 4"):
        Layout.of("pca", 4)


def test_failed_write_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / "x.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_open_atlas_lists_the_known_ones(tmp_path):
    _write_small(tmp_path / "good")
    (tmp_path / "junk").mkdir()
    assert [p.name for p in list_atlases(tmp_path)] == ["good"]
    with pytest.raises(UnknownAtlas, match="'nope'.*good"):
        open_atlas(tmp_path, "nope")
    with pytest.raises(UnknownAtlas):
        open_atlas(tmp_path, "../good")


def test_corrupt_manifest_is_damage_naming_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text("{not json")
    with pytest.raises(StorageError, match=r"atlas 'a' is damaged: manifest.json \(Invalid JSON") as err:
        Atlas(tmp_path / "a")
    assert str(tmp_path) not in str(err.value)  # messages may reach API clients: no server paths


def test_manifest_missing_a_field_names_the_field(tmp_path):
    _write_small(tmp_path / "a")
    raw = json.loads((tmp_path / "a" / "manifest.json").read_text())
    del raw["heads"]
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(StorageError, match=r"damaged: manifest.json \(heads: Field required\)"):
        read_manifest(tmp_path / "a")


def test_manifest_round_trips_and_records_layouts(tmp_path):
    w = _write_small(tmp_path / "a")
    for head in range(3):
        for layer in range(2):
            w.write_projection(layer, head, PCA2, np.zeros((10, 2)), {})
    m = w.record_layout(PCA2, seed=7)
    assert m.reductions["pca-2d"].complete and m.reductions["pca-2d"].seed == 7
    again = read_manifest(tmp_path / "a")
    assert again == m and again.format == 1 and again.total_heads == 6


def test_layout_keys_parse_and_list_in_build_order():
    from qkatlas.layout import ALL, layouts, parse_methods

    assert Layout.parse("umap-3d") == Layout("umap", 3) and Layout("tsne", 2).key == "tsne-2d"
    assert Layout("tsne", 2).title == "t-SNE 2-D"
    assert [l.key for l in ALL] == ["pca-2d", "pca-3d", "umap-2d", "umap-3d", "tsne-2d", "tsne-3d"]
    assert parse_methods("tsne, PCA") == ["pca", "tsne"]
    assert [l.key for l in layouts(["tsne", "pca"], [3])] == ["pca-3d", "tsne-3d"]


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    # A path under a regular file cannot be written, even by root (tests run as root in CI).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not writable"):
        AtlasWriter(blocker / "a")


def test_atlas_ids_are_safe_folder_names():
    assert atlas_id("minilm", "default") == "minilm__default"
    assert atlas_id("tiny-gpt2", "my file.txt", 50) == "tiny-gpt2__my-file.txt-n50"


def test_keys_sharing_a_large_component_keep_their_precision(tmp_path):
    """DINOv2 layer 3's keys share a component of ~37: in float16 its steps are 0.031. Stored
    less their mean, the keys read back far closer than a plain float16 copy."""
    w = _write_small(tmp_path / "a")
    rng = np.random.default_rng(1)
    q = rng.normal(size=(5, 3, 4)).astype(np.float32)
    k = (37.0 + 0.05 * rng.normal(size=(5, 3, 4))).astype(np.float32)
    w.write_vectors(0, q, k, scaling=0.5)
    stored = Atlas(tmp_path / "a").keys(0)
    plain = k.astype(np.float16).astype(np.float32)
    assert np.abs(stored - k).max() < 1e-4 < np.abs(plain - k).max()
    np.testing.assert_allclose(Atlas(tmp_path / "a").head_vectors(0, 1)[1], k[:, 1], atol=1e-4)
    assert np.load(tmp_path / "a" / "vectors" / "k_L00.npy").dtype == np.float16  # mild: half precision is enough


def test_a_head_whose_attention_float16_would_move_is_stored_exactly(tmp_path):
    """Logits of a few units from vectors of norm ~60: float16 rounding moves attention by ~1e-3
    (measured), four times what the store allows; those vectors are kept in float32."""
    from qkatlas.manifest import read_manifest as read

    path = tmp_path / "a"
    w = _write_small(path)
    w.write_manifest(read(path).model_copy(update={"tokens": 50}))
    rng = np.random.default_rng(2)
    q, k = (30 * rng.normal(size=(50, 3, 4))).astype(np.float32), (30 * rng.normal(size=(50, 3, 4))).astype(np.float32)
    w.write_vectors(1, q, k, scaling=3 / 30**2)
    assert np.load(path / "vectors" / "k_L01.npy").dtype == np.float32
    np.testing.assert_allclose(Atlas(path).keys(1), k, rtol=0, atol=1e-4)


def _damage(path, how):
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage" * 10)
    else:
        path.unlink()


@pytest.mark.parametrize("file,how,read", [
    ("vectors/q_L01.npy", "truncate", lambda a: a.head_vectors(1, 0)),
    ("vectors/k_L00.npy", "garbage", lambda a: a.keys(0)),
    ("vectors/kmean_L00.npy", "truncate", lambda a: a.head_vectors(0, 0)),
    ("vectors/qmean_L01.npy", "garbage", lambda a: a.queries(1)),
    ("tokens.parquet", "truncate", lambda a: a.tokens),
    ("items.parquet", "missing", lambda a: a.items),
    ("joint.npz", "garbage", lambda a: a.joint_transform(0, 0)),
    ("projections/pca-2d/L01H02.npy", "truncate", lambda a: a.projection(1, 2, PCA2)),
    ("projections/pca-2d/L01H02.json", "garbage", lambda a: a.projection_meta(1, 2, PCA2)),
    ("projections/pca-2d/L01H02.json", "truncate", lambda a: a.quality_table(PCA2)),
])
def test_a_damaged_file_is_reported_by_name_without_server_paths(tmp_path, file, how, read):
    from qkatlas.errors import AtlasDamaged

    w = _write_small(tmp_path / "a")
    w.write_projection(1, 2, PCA2, np.zeros((10, 2), np.float32), {"quality": {"knn_recall@10": 0.5}})
    _damage(tmp_path / "a" / file, how)
    with pytest.raises(AtlasDamaged) as err:
        read(Atlas(tmp_path / "a"))
    message = str(err.value)
    assert f"atlas 'a' is damaged: {file} (" in message and str(tmp_path) not in message
    assert err.value.status == 503


def test_a_projection_of_the_wrong_shape_is_damage_not_data(tmp_path):
    from qkatlas.errors import AtlasDamaged

    w = _write_small(tmp_path / "a")
    w.write_projection(0, 0, PCA2, np.zeros((7, 2), np.float32), {})  # 5 tokens: 10 rows expected
    with pytest.raises(AtlasDamaged, match=r"shape \(7, 2\), expected \(10, 2\)"):
        Atlas(tmp_path / "a").projection(0, 0, PCA2)
