"""The joint choice in real builds: recorded, stored with its agreement, never mixed with another
choice, and on real weights never worse than raw q/k."""

import json
import shutil

import numpy as np
import pytest

from qkatlas.agreement import agreement, contexts, scores
from qkatlas.build import build
from qkatlas.joint import attentionviz_transform, to_joint
from qkatlas.layout import Layout
from qkatlas.manifest import read_manifest
from qkatlas.reduce.methods import make_reducer
from qkatlas.settings import Settings
from qkatlas.store import Atlas

PCA2 = Layout("pca", 2)


def test_build_records_the_joint_choice_and_stores_its_agreement(tiny_bert_atlas):
    atlas = Atlas(tiny_bert_atlas)
    assert atlas.manifest.joint == "qkatlas"
    assert atlas.joint["agreement"].shape == atlas.joint["raw_agreement"].shape == (atlas.layers, atlas.heads, 2)
    for layer in range(atlas.layers):
        for head in range(atlas.heads):
            got = atlas.joint_agreement(layer, head)
            assert got["joint"]["attention_agreement"] >= got["raw"]["attention_agreement"]
            quality = atlas.projection_meta(layer, head, PCA2)["quality"]
            assert -1 <= quality["attention_agreement"] <= 1 and -1 <= quality["distance_dot_pearson"] <= 1


def test_another_joint_choice_builds_a_new_version_with_its_own_layouts(tmp_path):
    settings = Settings(data_dir=tmp_path, workers=1)
    first = Atlas(build(settings, "tiny-bert", "default", limit=10, methods=["pca"], dims=[2]))
    path = build(settings.with_(joint="attentionviz"), "tiny-bert", "default", limit=10, methods=["pca"], dims=[2])
    av = Atlas(path)
    assert av.path != first.path and av.manifest.joint == "attentionviz"
    for layer, head in ((0, 0), (1, 3)):
        q, k = av.head_vectors(layer, head)
        t, s = av.joint_transform(layer, head)
        t_av, s_av = attentionviz_transform(q, k)  # from the stored (float16) vectors, the build from float32
        np.testing.assert_allclose(t, t_av, atol=1e-2)
        assert s == pytest.approx(s_av, rel=1e-3)
        # the layout is of this joint space, not left over from the qkatlas version
        X = to_joint(q, k, t, s)
        Y = make_reducer("pca", 2).fit_transform(X)
        stored = av.projection(layer, head, PCA2)
        np.testing.assert_allclose(np.abs(stored), np.abs(Y), atol=2e-3)  # PCA axes may flip sign
    again = build(settings.with_(joint="attentionviz"), "tiny-bert", "default", limit=10, methods=["pca"], dims=[2])
    assert Atlas(again).path == av.path  # the same choice again: nothing to recapture


def test_atlases_built_before_the_choice_read_as_attentionviz_without_agreement(tiny_bert_atlas, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_bert_atlas, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["joint"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with np.load(old / "joint.npz") as z:
        kept = {"translation": z["translation"], "scale": z["scale"]}
    with open(old / "joint.npz", "wb") as f:
        np.savez(f, **kept)
    assert read_manifest(old).joint == "attentionviz"
    atlas = Atlas(old)
    assert atlas.joint_agreement(1, 2) == {}
    np.testing.assert_array_equal(atlas.joint_transform(1, 2)[0], kept["translation"][1, 2])


def _rank(points, S, ctx):
    n = len(points) // 2
    return agreement(points[:n], points[n:], S, ctx)["attention_agreement"]


@pytest.mark.slow  # ~10 s on two idle cores: 72 heads, each scored four ways and one PCA fitted
def test_on_minilm_qkatlas_is_never_worse_than_raw_and_attentionviz_is(minilm_atlas):
    """Real weights, 60 sentences. Asserted per head in the joint space (the search's guarantee,
    re-measured here from the stored float16 vectors, so within 0.01) and on the mean over heads in
    the PCA 2-D layout as stored (whose plane the build fitted afresh); AttentionViz's transform is
    measured too: the issue found it below raw q/k, and it must stay found."""
    atlas = Atlas(minilm_atlas)
    ctx = contexts(atlas.item_offsets, atlas.causal, seed=atlas.manifest.seed)
    rows = []
    for layer in range(atlas.layers):
        for head in range(atlas.heads):
            q, k = atlas.head_vectors(layer, head)
            S = scores(q, k, ctx)
            raw, ours = np.concatenate([q, k]), to_joint(q, k, *atlas.joint_transform(layer, head))
            av = to_joint(q, k, *attentionviz_transform(q, k))
            raw_pca = make_reducer("pca", 2).fit_transform(raw)
            rows.append((_rank(raw, S, ctx), _rank(ours, S, ctx), _rank(av, S, ctx), _rank(raw_pca, S, ctx),
                         atlas.projection_meta(layer, head, PCA2)["quality"]["attention_agreement"]))
    raw, ours, av, raw_pca, ours_pca = np.array(rows).T
    assert np.all(ours >= raw - 0.01)
    assert ours.mean() > raw.mean() + 0.03
    assert av.mean() < raw.mean() - 0.1
    assert ours_pca.mean() >= raw_pca.mean()
