"""Capture correctness: attention rebuilt from captured q/k equals the model's own."""

import numpy as np
import pytest

from qkatlas.capture.inputs import prepare
from qkatlas.capture.loader import load_model
from qkatlas.capture.run import capture
from qkatlas.capture.trace import layer_of
from qkatlas.capture.verify import verify
from qkatlas.catalog import get_model, load_catalog
from qkatlas.corpus import load_corpus
from qkatlas.errors import ModelUnavailable
from qkatlas.settings import Settings

from ..conftest import needs_shared

TOL = 1e-4


def _verify(model_id, limit, settings=None):
    settings = settings or Settings()
    entry = get_model(settings, model_id)
    loaded = load_model(entry, settings, "cpu")
    items = load_corpus("default", entry.modality, limit).items
    return loaded, verify(loaded, prepare(loaded, list(items)))


@pytest.mark.parametrize("model_id", ["tiny-gpt2", "tiny-bert", "tiny-vit", "tiny-vit-timm"])
def test_rebuilt_attention_matches_model_for_tiny_architectures(model_id):
    _, result = _verify(model_id, 6)
    assert result["max_abs_err"] <= TOL
    assert result["tokens"] > 6


def test_gpt2_small_shapes_random_init_rebuild_attention():
    """The GPT-2 path at GPT-2-small shapes (12 x 12, head dim 64), random init, real tokenizer."""
    from qkatlas.catalog import ModelEntry

    settings = Settings()
    entry = get_model(settings, "tiny-gpt2")
    entry = ModelEntry(**{**entry.__dict__, "config": {"n_layer": 12, "n_head": 12, "n_embd": 768}})
    loaded = load_model(entry, settings, "cpu")
    assert (loaded.layers, loaded.heads, loaded.head_dim) == (12, 12, 64)
    items = load_corpus("default", "text", 3).items
    assert verify(loaded, prepare(loaded, list(items)))["max_abs_err"] <= TOL


@needs_shared
def test_real_minilm_weights_rebuild_attention():
    loaded, result = _verify("minilm", 8)
    assert (loaded.layers, loaded.heads, loaded.head_dim) == (6, 12, 32)
    assert result["max_abs_err"] <= TOL


@needs_shared
def test_real_dinov2_weights_rebuild_attention_at_224px():
    loaded, result = _verify("dinov2-small", 2)
    assert loaded.image.size == 224 and loaded.image.grid == 16
    assert result["tokens"] == 2 * (256 + 1)
    assert result["max_abs_err"] <= TOL


def test_capture_removes_padding_and_keeps_provenance():
    settings = Settings()
    loaded = load_model(get_model(settings, "tiny-bert"), settings, "cpu")
    items = load_corpus("default", "text", 5).items
    prepared = prepare(loaded, list(items))
    captured = capture(loaded, prepared, batch_size=2)
    ids = loaded.tokenizer([it.text for it in items])["input_ids"]
    assert prepared.n_tokens == sum(len(x) for x in ids)
    assert captured.q[0].shape == (prepared.n_tokens, 4, 16) and captured.q[0].dtype == np.float16
    rows = prepared.token_rows
    assert rows["text"][0] == "[CLS]" and rows["special"][0] is True
    first = len(ids[0])
    assert rows["item"][first] == 1 and rows["position"][first] == 0
    # Batched capture equals capturing one item alone (padding removed, rows in item order).
    alone = capture(loaded, prepare(loaded, [items[1]]), batch_size=1)
    np.testing.assert_array_equal(captured.k[1][first:first + len(ids[1])], alone.k[1])


def test_staged_copies_land_every_batch_in_the_same_rows_as_direct_copies():
    """The CUDA path (pinned buffers, each batch landing while the next one runs), driven on the CPU:
    4 batches reuse both buffer sets, the last lands at the end, the shortest is smaller than the buffers."""
    settings = Settings()
    loaded = load_model(get_model(settings, "tiny-gpt2"), settings, "cpu")
    prepared = prepare(loaded, list(load_corpus("default", "text", 7).items))
    direct = capture(loaded, prepared, batch_size=2, staged=False)
    staged = capture(loaded, prepared, batch_size=2, staged=True)
    for a, b in zip(direct.q + direct.k, staged.q + staged.k):
        np.testing.assert_array_equal(a, b)


def test_image_tokens_carry_patch_rows_and_columns():
    settings = Settings()
    loaded = load_model(get_model(settings, "tiny-vit"), settings, "cpu")
    prepared = prepare(loaded, list(load_corpus("images", "image", 2).items))
    rows = prepared.token_rows
    assert prepared.n_tokens == 2 * 17
    assert rows["text"][0] == "[CLS]" and rows["row"][0] == -1
    assert (rows["row"][1], rows["col"][1]) == (0, 0)
    assert (rows["row"][16], rows["col"][16]) == (3, 3)
    assert rows["item"][17] == 1
    assert len(prepared.pngs) == 2 and prepared.pngs[0][:4] == b"\x89PNG"


def test_layer_index_comes_from_the_module_path():
    assert layer_of("encoder.layer.3.attention.self") == 3
    assert layer_of("h.11.attn") == 11
    assert layer_of("embeddings") is None


def test_catalog_has_required_models_and_labels_random_ones():
    catalog = load_catalog(Settings())
    for required in ("gpt2", "bert-base-uncased", "vit-base-patch16-224", "minilm", "dinov2-small",
                     "tiny-gpt2", "tiny-bert", "tiny-vit", "tiny-llama", "smollm2"):
        assert required in catalog
    assert all("random" in e.display_label for e in catalog.values() if e.random)
    assert catalog["vit-base-patch16-224"].loader == "timm"


def test_missing_model_offline_names_the_model_and_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = Settings(shared_models=tmp_path / "none")
    with pytest.raises(ModelUnavailable) as err:
        load_model(get_model(settings, "gpt2"), settings, "cpu")
    msg = str(err.value)
    assert "'gpt2'" in msg and "openai-community/gpt2" in msg and "QKATLAS_SHARED_MODELS" in msg
