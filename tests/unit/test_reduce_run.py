"""reduce_layout, the reduce stage's one entry point, and placing new points into stored layouts."""

import json
import shutil

import numpy as np
import pytest

from qkatlas.errors import NotReady
from qkatlas.layout import Layout
from qkatlas.reduce.place import place
from qkatlas.reduce.run import heads_of, joint_cloud, pending_heads, reduce_layout
from qkatlas.store import Atlas, projection_dir

PCA2 = Layout("pca", 2)


@pytest.fixture
def atlas_copy(tiny_text_atlas, tmp_path):
    """The tiny GPT-2 atlas's vectors, with no layouts yet."""
    path = tmp_path / "atlas"
    shutil.copytree(tiny_text_atlas, path, ignore=shutil.ignore_patterns("projections"))
    return path


def _stamps(folder):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in folder.iterdir()}


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "pool of 2"])
def test_every_head_is_written_once_with_its_quality(atlas_copy, batched):
    done = []
    written = reduce_layout(atlas_copy, PCA2, workers=2, batched=batched, on_done=done.append)
    atlas = Atlas(atlas_copy)
    assert sorted((s["layer"], s["head"]) for s in done) == heads_of(atlas) and len(written) == len(done)
    for layer, head in heads_of(atlas):
        meta = atlas.projection_meta(layer, head, PCA2)
        assert set(meta["quality"]) == {"knn_recall@10", "trustworthiness@10", "sample",
                                        "attention_agreement", "distance_dot_pearson"}
        assert len(meta["components"]) == 2 and meta["points"] == 2 * atlas.n_tokens
        assert atlas.projection(layer, head, PCA2).shape == (2 * atlas.n_tokens, 2)
    folder = projection_dir(atlas_copy, PCA2)
    before = _stamps(folder)
    assert reduce_layout(atlas_copy, PCA2, workers=2, batched=batched, on_done=done.append) == []
    assert _stamps(folder) == before and not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_only_the_heads_asked_for_and_not_yet_written_are_reduced(atlas_copy):
    atlas = Atlas(atlas_copy)
    assert [s["head"] for s in reduce_layout(atlas_copy, PCA2, heads=[(1, 2), (1, 3)])] == [2, 3]
    assert pending_heads(atlas, PCA2, heads_of(atlas, [1])) == [(1, 0), (1, 1)]
    assert [(s["layer"], s["head"]) for s in reduce_layout(atlas_copy, PCA2, heads_of(atlas, [1]))] == [(1, 0), (1, 1)]
    assert atlas.heads_done(PCA2) == 4


def test_batched_and_per_head_pca_give_the_same_layouts(atlas_copy):
    reduce_layout(atlas_copy, PCA2, batched=True)
    other = atlas_copy.parent / "other"
    shutil.copytree(atlas_copy, other, ignore=shutil.ignore_patterns("projections"))
    reduce_layout(other, PCA2, batched=False, workers=1)
    a, b = Atlas(atlas_copy), Atlas(other)
    for layer, head in heads_of(a):
        np.testing.assert_allclose(a.projection(layer, head, PCA2), b.projection(layer, head, PCA2), atol=1e-4)
        qa, qb = (x.projection_meta(layer, head, PCA2)["quality"] for x in (a, b))
        assert qa.keys() == qb.keys() and all(abs(qa[key] - qb[key]) <= 0.01 for key in qa)


@pytest.mark.parametrize("dim", [2, 3])
def test_placing_a_heads_own_joint_cloud_reproduces_its_stored_pca_layout(tiny_text_atlas, dim):
    atlas, layout = Atlas(tiny_text_atlas), Layout("pca", dim)
    for layer, head in heads_of(atlas):
        stored = atlas.projection(layer, head, layout)
        placed = place(atlas, layer, head, layout, joint_cloud(atlas, layer, head))
        assert placed.shape == stored.shape and placed.dtype == np.float32
        # Measured 0.0 here and on MiniLM L6 (|coords| up to 12): the same float32 numbers, the same
        # product; the bound leaves room for a BLAS or a GPU that sums in another order.
        np.testing.assert_allclose(placed, stored, rtol=0, atol=1e-5)


def test_placing_into_a_layout_not_computed_says_so(atlas_copy):
    atlas = Atlas(atlas_copy)
    with pytest.raises(NotReady, match="not computed yet"):
        place(atlas, 0, 0, PCA2, joint_cloud(atlas, 0, 0))


def test_quality_is_written_before_the_layout_is_visible(atlas_copy):
    """The .npy marks a head done; its .json already holds everything, quality included."""
    reduce_layout(atlas_copy, PCA2, heads=[(0, 1)])
    npy = projection_dir(atlas_copy, PCA2) / "L00H01.npy"
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert npy.with_suffix(".json").stat().st_mtime_ns <= npy.stat().st_mtime_ns and "quality" in meta
