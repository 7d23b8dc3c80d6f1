"""Attention rebuilt from the STORED files stays within 1e-3 of the model's own (float32 capture)
for every head of the default atlases' models: the float16 store is lossless enough."""

import numpy as np
import pytest

from qkatlas.build import build
from qkatlas.capture.inputs import prepare
from qkatlas.capture.loader import load_model
from qkatlas.capture.run import capture
from qkatlas.catalog import get_model
from qkatlas.corpus import load_corpus
from qkatlas.joint import attention
from qkatlas.settings import Settings
from qkatlas.store import Atlas

from ..conftest import needs_shared

TOLERANCE = 1e-3


def worst_rebuild_error(settings: Settings, model: str, corpus: str, limit: int) -> tuple[float, tuple]:
    """Largest |attention from the stored files - attention from a float32 capture| over every
    item, layer and head; and where it was."""
    path = build(settings, model, corpus, limit=limit, methods=["pca"], dims=[2])
    atlas = Atlas(path)
    entry = get_model(settings, model)
    loaded = load_model(entry, settings, "cpu")
    prepared = prepare(loaded, list(load_corpus(corpus, entry.modality, limit).items))
    exact = capture(loaded, prepared, batch_size=8, dtype=np.float32)
    worst, where = 0.0, None
    for layer in range(atlas.layers):
        q_stored, k_stored = atlas.queries(layer), atlas.keys(layer)
        for item in range(len(prepared.lengths)):
            a, b = prepared.offsets[item], prepared.offsets[item + 1]
            for head in range(atlas.heads):
                got = attention(q_stored[a:b, head], k_stored[a:b, head], atlas.scaling(layer), atlas.causal)
                want = attention(exact.q[layer][a:b, head], exact.k[layer][a:b, head], exact.scaling[layer],
                                 loaded.causal)
                err = float(np.abs(got - want).max())
                if err > worst:
                    worst, where = err, (layer, head, item)
    return worst, where


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("model,corpus,limit", [("minilm", "default", 16), ("dinov2-small", "images", 4)])
def test_stored_vectors_rebuild_attention_within_1e3_for_every_head(tmp_path, model, corpus, limit):
    worst, where = worst_rebuild_error(Settings(data_dir=tmp_path, workers=1), model, corpus, limit)
    assert worst <= TOLERANCE, f"{model}: error {worst:.2e} at (layer, head, item) {where}"


@needs_shared
@pytest.mark.slow
def test_smollm2_stored_vectors_rebuild_attention_within_1e3(tmp_path):
    worst, where = worst_rebuild_error(Settings(data_dir=tmp_path, workers=1), "smollm2", "default", 4)
    assert worst <= TOLERANCE, f"smollm2: error {worst:.2e} at (layer, head, item) {where}"
