"""Statistics of real trained heads: MiniLM's previous-token head, DINOv2's distances, SmolLM2's induction."""

import numpy as np
import pytest

from qkatlas.build import build
from qkatlas.capture.loader import load_model
from qkatlas.catalog import get_model
from qkatlas.stats import THRESHOLDS
from qkatlas.stats_run import measure_induction
from qkatlas.store import Atlas

from ..conftest import SHARED_MODELS, needs_shared


@needs_shared
def test_every_minilm_head_gets_statistics_and_layer_0_head_2_is_previous_token(minilm_atlas):
    table = Atlas(minilm_atlas).stats_table().to_pydict()
    assert len(table["label"]) == 6 * 12
    assert all(v is not None for name in ("entropy", "distance", "previous", "positional") for v in table[name])
    row = 0 * 12 + 2
    assert table["kind"][row] == "previous-token" and table["previous"][row] > 0.9
    assert table["label"][row].startswith("previous-token (offset \u22121: ")
    assert table["positional"][row] > 0.9  # what it attends to is set by positions


@pytest.mark.slow
@needs_shared
def test_dinov2_late_layers_hold_only_global_heads_and_early_layers_local_ones(settings, tmp_path):
    path = build(settings.with_(data_dir=tmp_path), "dinov2-small", "images", limit=8, methods=["pca"], dims=[2],
                 layers="0")
    table = Atlas(path).stats_table().to_pydict()
    distance = np.array(table["distance"]).reshape(12, 6)  # patches
    assert table["kind"].count(None) == 0 and np.isfinite(distance).all()
    # docs/stats.md: the least distance of a layer grows with depth after layer 4; layer 0 is broad
    assert distance[1:5].min(axis=1).max() < distance[8:].min(axis=1).min()
    assert distance[0].min() > distance[1:5].min(axis=1).max()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_MODELS / "smollm2-135m-instruct").is_dir(), reason="SmolLM2 weights are absent")
def test_smollm2_has_induction_heads_and_random_init_has_none(settings):
    trained = measure_induction(load_model(get_model(settings, "smollm2"), settings, "cpu"))
    assert trained.shape == (30, 9)
    assert trained.max() > 0.6 and (trained >= THRESHOLDS["induction"]).sum() >= 3
    assert (trained[:8] < 0.1).all()  # induction needs a previous-token head below it: not in the first layers
    random = measure_induction(load_model(get_model(settings, "tiny-llama"), settings, "cpu"))
    assert random.max() < 0.1
