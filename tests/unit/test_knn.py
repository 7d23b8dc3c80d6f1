"""The shared kNN graph: exact, kept in the atlas atomically, computed by a head's first layout
that needs it and read by the rest, and gone once the build has written every layout."""

import shutil

import numpy as np
import pytest

from qkatlas.build import reduce_stage
from qkatlas.layout import Layout
from qkatlas.progress import Silent
from qkatlas.reduce import make_reducer
from qkatlas.reduce.knn import K, exact_graph, graph_file, head_graph
from qkatlas.reduce.run import joint_cloud, reduce_layout
from qkatlas.store import Atlas

HEAD = (1, 2)


def _mixture(points=400, features=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, features)) * 5
    return (centres[rng.integers(0, 6, points)] + rng.normal(size=(points, features))).astype(np.float32)


def _brute(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance in float64, the point itself excluded: the k nearest (indices, distances)."""
    D = np.linalg.norm(X[:, None, :].astype(np.float64) - X[None, :, :], axis=-1)
    np.fill_diagonal(D, np.inf)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(D, idx, axis=1)


def _stamp(path):
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


@pytest.fixture
def atlas_copy(tiny_text_atlas, tmp_path):
    path = tmp_path / "atlas"
    shutil.copytree(tiny_text_atlas, path, ignore=shutil.ignore_patterns("projections"))
    return path


def test_the_graph_is_an_exact_nearest_neighbour_search_without_the_point_itself():
    X = _mixture()
    graph = exact_graph(X, 20)
    idx, dist = _brute(X, 20)
    assert graph.indices.shape == (400, 20) and graph.indices.dtype == np.int32
    assert graph.distances.dtype == np.float32
    np.testing.assert_array_equal(graph.indices, idx)
    np.testing.assert_allclose(graph.distances, dist, rtol=1e-5, atol=1e-5)
    assert (graph.indices != np.arange(400)[:, None]).all()


def test_exact_duplicates_are_neighbours_at_zero_and_umaps_form_puts_the_point_first():
    X = np.repeat(_mixture(50), 4, axis=0)  # every point four times, as layer-0 tokens are
    graph = exact_graph(X, 5)
    assert (graph.distances[:, :3] == 0).all() and (graph.distances[:, 3:] > 0).all()
    assert (graph.indices[:, :3] // 4 == np.arange(200)[:, None] // 4).all()  # its three copies
    idx, dist = graph.with_self(6)
    assert (idx[:, 0] == np.arange(200)).all() and (dist[:, 0] == 0).all()
    np.testing.assert_array_equal(idx[:, 1:], graph.indices)


def test_a_tiny_cloud_gets_every_other_point():
    X = _mixture(12)
    graph = exact_graph(X)
    assert graph.k == 11 and {tuple(sorted(row)) for row in graph.indices} == {
        tuple(j for j in range(12) if j != i) for i in range(12)}


def test_a_heads_graph_is_computed_by_its_first_layout_and_read_by_the_others(atlas_copy):
    path = graph_file(atlas_copy, *HEAD)
    assert not path.exists()
    reduce_layout(atlas_copy, Layout("pca", 2), [HEAD], workers=1)
    assert not path.exists()  # PCA needs no neighbours: the first screen is not kept waiting
    reduce_layout(atlas_copy, Layout("tsne", 2), [HEAD], workers=1)
    first = _stamp(path)
    X = joint_cloud(Atlas(atlas_copy), *HEAD)
    with np.load(path) as kept:
        np.testing.assert_array_equal(kept["indices"], exact_graph(X).indices)
        assert kept["indices"].shape == (len(X), K)
    reduce_layout(atlas_copy, Layout("tsne", 3), [HEAD], workers=1)
    assert _stamp(path) == first  # read, not written again
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind
    meta = Atlas(atlas_copy).projection_meta(*HEAD, Layout("tsne", 3))
    assert meta["params"]["neighbours"].startswith("exact kNN, shared")


def test_a_damaged_or_too_small_graph_is_computed_again(atlas_copy):
    X = joint_cloud(Atlas(atlas_copy), *HEAD)
    path = graph_file(atlas_copy, *HEAD)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    graph = head_graph(atlas_copy, *HEAD, X, 14)
    # the first 14 of a full search: which of many exact duplicates a shorter search keeps may differ
    np.testing.assert_array_equal(graph.indices, exact_graph(X).first(14).indices)
    with np.load(path) as kept:
        assert kept["indices"].shape == (len(X), K)
    np.savez(path, indices=graph.indices[:, :5], distances=graph.distances[:, :5])  # fewer than asked for
    assert head_graph(atlas_copy, *HEAD, X, 14).k == 14


def test_layouts_from_the_shared_graph_equal_a_fit_that_searches_itself(atlas_copy):
    """The stored graph is the one a reducer would compute: where a layout's graph came from
    never changes it."""
    reduce_layout(atlas_copy, Layout("tsne", 2), [HEAD], workers=1)
    atlas = Atlas(atlas_copy)
    X = joint_cloud(atlas, *HEAD)
    alone = make_reducer("tsne", 2).fit_transform(X)
    np.testing.assert_array_equal(atlas.projection(*HEAD, Layout("tsne", 2)), alone)


def test_the_build_drops_the_graphs_once_every_layout_is_written(atlas_copy, settings):
    reduce_layout(atlas_copy, Layout("tsne", 2), [HEAD], workers=1)
    assert graph_file(atlas_copy, *HEAD).exists()
    reduce_stage(settings, atlas_copy, ["tsne"], [2], [1], Silent())
    assert not (atlas_copy / "knn").exists()
    assert Atlas(atlas_copy).heads_done(Layout("tsne", 2)) == Atlas(atlas_copy).heads
