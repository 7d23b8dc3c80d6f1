"""Placing new points into stored layouts: PCA by its components, UMAP and t-SNE by their
library's transform on an estimator rebuilt from the head's joint cloud and stored layout."""

import shutil

import numpy as np
import pytest

from qkatlas.errors import NotReady
from qkatlas.layout import METHODS, Layout
from qkatlas.reduce.methods import CannotPlace, Reducer
from qkatlas.reduce.place import can_place, place, placer, stored_meta
from qkatlas.reduce.run import joint_cloud, reduce_layout
from qkatlas.store import Atlas

# umap-learn compiles its numba code once per process (~20-60 s on 2 busy cores): keep the tests
# that fit or place UMAP layouts on one xdist worker (tests/api/test_live.py's too).
pytestmark = pytest.mark.xdist_group("numba")

HEAD = (1, 2)


@pytest.fixture(scope="module")
def layouts(tiny_text_atlas, tmp_path_factory):
    """`with_layout(layout, batched=False)`: a copy of the tiny GPT-2 atlas (24 sentences, 520
    points a head) holding `layout` for HEAD, fitted once; batched layouts (the torch UMAP) in
    a copy of their own."""
    root = tmp_path_factory.mktemp("place")

    def with_layout(layout: Layout, batched: bool = False) -> Atlas:
        path = root / ("batched" if batched else "per-head") / tiny_text_atlas.name
        if not path.exists():
            shutil.copytree(tiny_text_atlas, path)
        reduce_layout(path, layout, [HEAD], workers=1, batched=batched)
        return Atlas(path)

    return with_layout


def distances_to_stored(atlas: Atlas, layout: Layout, rows: np.ndarray) -> np.ndarray:
    """How far the head's own joint points `rows`, placed anew, land from where the layout put
    them, in units of the layout's spread (root mean square distance from its centroid)."""
    X, Y = joint_cloud(atlas, *HEAD), atlas.projection(*HEAD, layout)
    P = place(atlas, *HEAD, layout, X[rows])
    assert P.shape == (len(rows), layout.dim) and P.dtype == np.float32
    spread = np.sqrt(((Y - Y.mean(axis=0)) ** 2).sum(axis=1).mean())
    return np.linalg.norm(P - Y[rows], axis=1) / spread


# Measured on every head of this atlas (every third point, queries and keys), median / 90th
# percentile of the distance in spreads; a point placed at random would be ~1.4 spreads away.
#   UMAP 2-D 0.050-0.076 / 0.096-0.164   UMAP 3-D 0.067-0.111 / 0.116-0.186
#   t-SNE 2-D 0.0017-0.0022 / 0.014-0.020   t-SNE 3-D 0.0020-0.0025 / 0.030-0.042
# umap-learn's transform starts a point that equals a stored one at its stored place, then
# moves it by 100 epochs of its SGD against the fixed layout; openTSNE's starts it at the
# median of its 25 neighbours and optimises 250 steps. The bounds are 2-3x the worst head.
BOUNDS = {"umap": (0.25, 0.45), "tsne": (0.006, 0.1)}


@pytest.mark.slow
@pytest.mark.parametrize("method,dim", [("umap", 2), ("umap", 3), ("tsne", 2), ("tsne", 3)])
def test_corpus_points_placed_into_umap_and_tsne_layouts_land_near_their_stored_positions(layouts, method, dim):
    layout = Layout(method, dim)
    atlas = layouts(layout)
    d = distances_to_stored(atlas, layout, np.arange(0, 2 * atlas.n_tokens, 3))
    median, p90 = BOUNDS[method]
    assert np.median(d) <= median and np.quantile(d, 0.9) <= p90, (np.median(d), np.quantile(d, 0.9))


@pytest.mark.slow
def test_a_layout_of_the_batched_torch_umap_places_points_with_umap_learn(layouts):
    # The same algorithm on the same cloud, with the parameters its .json names (500 epochs:
    # transform runs a third of them). Measured on every head of the atlas, batched on CPU:
    # median 0.046-0.073, 90th percentile 0.092-0.139 spreads, as umap-learn's own layouts.
    layout = Layout("umap", 2)
    atlas = layouts(layout, batched=True)
    assert atlas.projection_meta(*HEAD, layout)["params"]["implementation"] == "qkatlas batched torch"
    d = distances_to_stored(atlas, layout, np.arange(0, 2 * atlas.n_tokens, 3))
    median, p90 = BOUNDS["umap"]
    assert np.median(d) <= median and np.quantile(d, 0.9) <= p90, (np.median(d), np.quantile(d, 0.9))


@pytest.mark.slow
def test_placing_is_deterministic_and_rebuilding_gives_the_same_placer(layouts):
    for layout in (Layout("umap", 2), Layout("tsne", 2)):
        atlas = layouts(layout)
        X = joint_cloud(atlas, *HEAD)[::7]
        build = lambda: placer(layout, stored_meta(atlas, *HEAD, layout), lambda: joint_cloud(atlas, *HEAD),
                               lambda: atlas.projection(*HEAD, layout))
        first = build()
        assert first.nbytes >= X.nbytes
        np.testing.assert_array_equal(first.transform(X), first.transform(X))
        np.testing.assert_array_equal(first.transform(X), build().transform(X))


def test_every_method_places_and_a_layout_not_computed_says_so(layouts):
    atlas = layouts(Layout("pca", 2))  # the tiny atlas's own layout: no UMAP yet
    assert all(can_place(Layout(method, 2)) for method in METHODS)
    with pytest.raises(NotReady, match="^UMAP 2-D of layer 0 head 0 is not computed yet"):
        place(atlas, 0, 0, Layout("umap", 2), joint_cloud(atlas, 0, 0))


def test_a_method_without_placement_says_which_methods_can():
    class Fixed(Reducer):
        name, label = "fixed", "Fixed"

    why = "^Fixed layouts cannot place new points; layouts that can: PCA, UMAP, t-SNE$"
    with pytest.raises(CannotPlace, match=why):
        Fixed.placer({}, lambda: None, lambda: None)
