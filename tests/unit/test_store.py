import numpy as np
import pyarrow as pa
import pytest

from qkatlas.errors import NotFound, NotReady, StorageError, UnknownAtlas
from qkatlas.store import Atlas, AtlasWriter, atomic_path, atlas_id, list_atlases, open_atlas


def _write_small(path):
    w = AtlasWriter(path)
    w.write_manifest({"layers": 2, "heads": 3, "head_dim": 4, "tokens": 5, "corpus": {"modality": "text"},
                      "scaling": [0.5, 0.5]})
    w.write_tokens(pa.table({"token": np.arange(5), "item": [0, 0, 0, 1, 1], "position": [0, 1, 2, 0, 1],
                             "text": list("abcde"), "special": [False] * 5, "row": [-1] * 5, "col": [-1] * 5}))
    w.write_items(pa.table({"item": [0, 1], "text": ["abc", "de"], "image": ["", ""], "label": ["x", "y"]}))
    rng = np.random.default_rng(0)
    for layer in range(2):
        w.write_vectors(layer, rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3, 4)))
    w.write_joint(np.zeros((2, 3, 4)), np.ones((2, 3)))
    return w


def test_atlas_round_trip_with_float16_vectors_and_memory_maps(tmp_path):
    w = _write_small(tmp_path / "a")
    coords = np.arange(20, dtype=np.float32).reshape(10, 2)
    w.write_projection(1, 2, "pca", 2, coords, {"quality": {"knn_recall@10": 0.5}})
    atlas = Atlas(tmp_path / "a")
    assert atlas.queries(0).dtype == np.float16 and atlas.queries(0).shape == (5, 3, 4)
    assert isinstance(atlas.projection(1, 2, "pca", 2), np.memmap)
    np.testing.assert_array_equal(atlas.projection(1, 2, "pca", 2), coords)
    assert atlas.available_projections() == {"pca-2d": 1}
    assert atlas.quality_table("pca", 2) == {"L01H02": {"knn_recall@10": 0.5}}
    np.testing.assert_array_equal(atlas.item_offsets, [0, 3, 5])


def test_missing_projection_and_bad_head_are_clear_errors(tmp_path):
    _write_small(tmp_path / "a")
    atlas = Atlas(tmp_path / "a")
    with pytest.raises(NotReady, match="umap 2-D for layer 0 head 0"):
        atlas.projection(0, 0, "umap", 2)
    with pytest.raises(NotFound, match="layer 7 does not exist.*0..1"):
        atlas.projection(7, 0, "pca", 2)
    with pytest.raises(NotFound, match="head 3 does not exist.*0..2"):
        atlas.check_head(0, 3)
    with pytest.raises(NotFound, match="unknown method 'lda'"):
        atlas.projection(0, 0, "lda", 2)


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


def test_corrupt_manifest_is_a_storage_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text("{not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        Atlas(tmp_path / "a")


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    # A path under a regular file cannot be written, even by root (tests run as root in CI).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="not writable"):
        AtlasWriter(blocker / "a")


def test_atlas_ids_are_safe_folder_names():
    assert atlas_id("minilm", "default") == "minilm__default"
    assert atlas_id("tiny-gpt2", "my file.txt", 50) == "tiny-gpt2__my-file.txt-n50"
