"""Adapters: one per kind of model; causality comes from the model, the catalog can override it."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from qkatlas.capture.adapters import attention_modules
from qkatlas.capture.inputs import prepare
from qkatlas.capture.loader import load_model
from qkatlas.capture.run import capture
from qkatlas.capture.verify import verify
from qkatlas.catalog import get_model, load_catalog
from qkatlas.corpus import load_corpus
from qkatlas.settings import Settings

from ..conftest import needs_shared

TOL = 1e-4


def _load(model_id, settings=None):
    settings = settings or Settings()
    return load_model(get_model(settings, model_id), settings, "cpu")


def _catalog_with(tmp_path, model_id, line):
    """A copy of the catalog where `model_id`'s file gains `line` at the top level."""
    catalog = tmp_path / "models"
    shutil.copytree(Settings().catalog_dir, catalog)
    path = catalog / f"{model_id}.toml"
    path.write_text(f"{line}\n{path.read_text()}")  # before any [table], so the key is the entry's own
    return Settings(catalog_dir=catalog)


@needs_shared
def test_tiny_llama_with_grouped_query_attention_verifies_through_the_cli_as_causal():
    r = subprocess.run([sys.executable, "-m", "qkatlas", "verify", "tiny-llama", "--limit", "6"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["max_abs_err"] <= TOL and result["ok"] is True
    assert result["causal"] is True
    config = _load("tiny-llama").model.config
    assert (config.model_type, config.num_attention_heads, config.num_key_value_heads) == ("llama", 4, 2)


@needs_shared
@pytest.mark.parametrize("model_id,kv_heads", [
    ("tiny-llama", 2), ("tiny-gpt2", 4), ("tiny-bert", 4), ("tiny-vit", 4), ("tiny-vit-timm", 4),
])
def test_loaded_model_counts_key_value_heads(model_id, kv_heads):
    loaded = _load(model_id)
    assert loaded.heads == 4 and loaded.kv_heads == kv_heads


def assert_keys_shared_in_groups(captured, heads: int, kv_heads: int):
    """Query head h uses key/value head h // (heads // kv_heads) (transformers' repeat_kv order, and
    Manifest.kv_group's): the captured keys of heads in one group are identical, across groups not."""
    group = [h // (heads // kv_heads) for h in range(heads)]
    for k in captured.k:  # per layer: (tokens, heads, head_dim)
        for h in range(heads):
            first = group.index(group[h])
            assert (k[:, h] == k[:, first]).all(), f"head {h} should share the keys of head {first}"
        firsts = sorted(set(group.index(g) for g in group))
        assert all((k[:, a] != k[:, b]).any() for a, b in zip(firsts, firsts[1:]))


@needs_shared
def test_grouped_query_keys_are_expanded_in_repeat_kv_order():
    loaded = _load("tiny-llama")
    captured = capture(loaded, prepare(loaded, list(load_corpus("default", "text", 3).items)))
    assert_keys_shared_in_groups(captured, loaded.heads, loaded.kv_heads)


@needs_shared
@pytest.mark.parametrize("model_id,causal", [
    ("tiny-gpt2", True), ("tiny-llama", True), ("tiny-bert", False), ("tiny-vit", False), ("tiny-vit-timm", False),
])
def test_causality_comes_from_the_model_itself(model_id, causal):
    assert get_model(Settings(), model_id).causal is None  # no catalog help
    assert _load(model_id).causal is causal


@needs_shared
def test_catalog_causal_key_overrides_what_the_model_says(tmp_path):
    settings = _catalog_with(tmp_path, "tiny-llama", "causal = false")
    loaded = _load("tiny-llama", settings)
    assert loaded.causal is False
    # The override is what the rebuild uses, so verify shows when an override is wrong.
    items = load_corpus("default", "text", 3).items
    assert verify(loaded, prepare(loaded, list(items)))["max_abs_err"] > 1e-2


def test_catalog_causal_override_to_true(tmp_path):
    assert _load("tiny-vit", _catalog_with(tmp_path, "tiny-vit", "causal = true")).causal is True


def test_catalog_rejects_a_causal_that_is_not_a_boolean(tmp_path):
    settings = _catalog_with(tmp_path, "tiny-vit", 'causal = "yes"')
    with pytest.raises(ValueError, match="causal must be true or false"):
        load_catalog(settings)


@needs_shared
@pytest.mark.parametrize("model_id,attention_class", [
    ("tiny-gpt2", "GPT2Attention"), ("tiny-llama", "LlamaAttention"), ("tiny-bert", "BertSelfAttention"),
    ("tiny-vit", "ViTAttention"),
])
def test_trace_registers_one_attention_module_per_layer_and_nothing_else(model_id, attention_class):
    loaded = _load(model_id)
    found = attention_modules(loaded.model)
    assert sorted(found.values()) == list(range(loaded.layers))
    assert {type(m).__name__ for m in found} == {attention_class}


def test_each_catalog_kind_has_its_adapter():
    catalog = load_catalog(Settings())
    kinds = {model_id: catalog[model_id] for model_id in
             ("tiny-gpt2", "tiny-llama", "minilm", "smollm2", "tiny-vit", "dinov2-small", "tiny-vit-timm",
              "vit-base-patch16-224")}
    from qkatlas.capture.adapters import adapter_for

    assert {k: adapter_for(e).name for k, e in kinds.items()} == {
        "tiny-gpt2": "hf-text", "tiny-llama": "hf-text", "minilm": "hf-text", "smollm2": "hf-text",
        "tiny-vit": "hf-vision", "dinov2-small": "hf-vision",
        "tiny-vit-timm": "timm-vit", "vit-base-patch16-224": "timm-vit",
    }


def test_capture_refuses_layers_whose_attention_it_did_not_see():
    loaded = _load("tiny-vit")
    loaded.layers += 1  # a model claiming a layer its adapter cannot trace
    prepared = prepare(loaded, list(load_corpus("images", "image", 1).items))
    with pytest.raises(RuntimeError, match=r"captured no attention in layers \[2\]"):
        capture(loaded, prepared)


@needs_shared
@pytest.mark.parametrize("model_id", ["tiny-gpt2", "tiny-vit-timm"])
def test_random_models_loaded_at_once_in_threads_get_the_weights_they_get_alone(model_id):
    """The server warms models up in threads of its own (several apps in one process in tests,
    live answers beside a build): a seed set in one thread must not be consumed by another's init."""
    from concurrent.futures import ThreadPoolExecutor

    alone = _load(model_id).model.state_dict()
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda _: _load(model_id).model.state_dict(), range(8)))
    for weights in together:
        assert all(torch.equal(weights[name], alone[name]) for name in alone)
