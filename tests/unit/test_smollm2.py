"""SmolLM2-135M-Instruct, a real causal model with grouped-query attention, from its Q4_1 GGUF file.

The file is de-quantised once per session into a session cache (QKATLAS_CACHE_DIR); every later
load, in this process or in a CLI subprocess, reads the converted folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qkatlas.capture.adapters import load_tokenizer
from qkatlas.capture.gguf import CACHE_ENV, STAGE, STEPS, converted_folder
from qkatlas.capture.inputs import prepare
from qkatlas.capture.loader import load_model
from qkatlas.capture.run import capture
from qkatlas.catalog import get_model
from qkatlas.corpus import load_corpus
from qkatlas.progress import Silent
from qkatlas.settings import Settings

from ..conftest import SHARED_MODELS
from .test_adapters import assert_keys_shared_in_groups

CLI = [sys.executable, "-m", "qkatlas"]
FOLDER = SHARED_MODELS / "smollm2-135m-instruct"
GGUF = FOLDER / "SmolLM2-135M-Instruct.Q4_1.gguf"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not GGUF.is_file(), reason=f"real weights file {GGUF} is absent")]


class Recorder(Silent):
    """A progress Reporter that remembers what it was told."""

    def __init__(self):
        self.stages: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self._current = ""

    def stage(self, name, total):
        self.stages[name], self.done[name], self._current = total, 0, name

    def advance(self, n=1):
        self.done[self._current] += n


@pytest.fixture(scope="session")
def gguf_cache(tmp_path_factory):
    """QKATLAS_CACHE_DIR for the session: an empty folder, filled by the first load."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("qkatlas-cache")
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="session")
def first_load(gguf_cache):
    """(SmolLM2 loaded once for the session, what its loading reported)."""
    settings, progress = Settings(), Recorder()
    assert not converted_folder(GGUF).exists()
    return load_model(get_model(settings, "smollm2"), settings, "cpu", progress), progress


@pytest.fixture(scope="session")
def smollm2(first_load):
    return first_load[0]


def _cli(*args, cache: Path):
    env = {**os.environ, CACHE_ENV: str(cache)}
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=600, env=env)


def test_smollm2_is_causal_with_three_key_value_heads(smollm2):
    assert (smollm2.layers, smollm2.heads, smollm2.kv_heads, smollm2.head_dim) == (30, 9, 3, 64)
    assert smollm2.causal is True
    assert smollm2.source == str(GGUF)


def test_first_load_shows_progress_while_de_quantising(first_load):
    _, progress = first_load
    assert progress.stages == {STAGE: STEPS} and progress.done == {STAGE: STEPS}


def test_converted_folder_is_a_plain_float32_model_with_its_tokenizer(smollm2):
    folder = converted_folder(GGUF)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(folder))
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert {p.dtype for p in smollm2.model.parameters()} == {torch.float32}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_second_load_reads_the_cache_and_never_parses_the_gguf_file(smollm2, monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("the GGUF file was parsed again")

    monkeypatch.setattr("gguf.GGUFReader", no_parsing)  # what transformers reads GGUF files with
    settings, progress = Settings(), Recorder()
    entry = get_model(settings, "smollm2")
    tokenizer = load_tokenizer(entry, settings, progress)
    assert tokenizer.name_or_path == str(converted_folder(GGUF))
    assert tokenizer("The capital of France is")["input_ids"] == smollm2.tokenizer("The capital of France is")["input_ids"]
    again = load_model(entry, settings, "cpu", progress)
    assert progress.stages == {}  # nothing to convert, nothing to show
    first, second = dict(smollm2.model.named_parameters()), dict(again.model.named_parameters())
    assert all((first[name] == second[name]).all() for name in first)


def test_query_heads_of_one_group_share_their_captured_keys(smollm2):
    items = list(load_corpus("default", "text", 2).items)
    assert_keys_shared_in_groups(capture(smollm2, prepare(smollm2, items)), smollm2.heads, smollm2.kv_heads)


def test_smollm2_verifies_through_the_cli(smollm2, gguf_cache):
    r = _cli("verify", "smollm2", "--limit", "8", cache=gguf_cache)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["max_abs_err"] <= 1e-4 and result["ok"] is True
    assert (result["layers"], result["heads"], result["causal"]) == (30, 9, True)


def test_smollm2_build_through_the_cli_records_causal_and_kv_heads(smollm2, gguf_cache, tmp_path):
    r = _cli("--data-dir", str(tmp_path), "build", "--model", "smollm2", "--limit", "20", "--methods", "pca",
             "--dims", "2", cache=gguf_cache)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "smollm2__default-n20" / "manifest.json").read_text())
    assert manifest["causal"] is True and manifest["kv_heads"] == 3 and manifest["heads"] == 9
    assert manifest["model"]["id"] == "smollm2" and manifest["corpus"]["items"] == 20
    assert manifest["reductions"]["pca-2d"]["complete"] is True


def test_a_users_own_gguf_file_builds_through_the_cli(smollm2, gguf_cache, tmp_path):
    r = _cli("--data-dir", str(tmp_path), "build", "--model", str(FOLDER), "--gguf-file", GGUF.name,
             "--limit", "3", "--methods", "pca", "--dims", "2", "--layers", "0", cache=gguf_cache)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.name == "smollm2-135m-instruct-q4_1__default-n3"  # named after the file
    model = json.loads((path / "manifest.json").read_text())["model"]
    assert model["source"] == model["weights"] == str(GGUF)
