"""Without a hub, a missing model is one clear error at once: the hub is judged once, then never retried.

These tests never reach a real hub: they use loopback servers, closed loopback ports and the
offline settings. They check the path taken, not how long it takes.
"""

import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qkatlas.capture.hub import hub_answers, offline_reason
from qkatlas.settings import Settings

CLI = [sys.executable, "-m", "qkatlas"]


class _Hub(BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket closes


def _no_hub_env(tmp_path, **extra) -> dict:
    """The environment of a machine with no models and no HF_HUB_OFFLINE: only our own settings decide."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    (tmp_path / "empty").mkdir(exist_ok=True)
    env |= {"QKATLAS_SHARED_MODELS": str(tmp_path / "empty"), "HF_HOME": str(tmp_path / "hf"),
            "QKATLAS_DATA_DIR": str(tmp_path / "atlases")}
    return env | extra


def _build(model_id, env, *args):
    return subprocess.run(CLI + ["build", "--model", model_id, "--limit", "1", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _one_clear_error(r) -> str:
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.stderr and "retry" not in r.stderr.lower() and "warning" not in r.stderr.lower()
    return errors[0]


def test_hub_probe_is_asked_once_per_process():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert hub_answers(endpoint) is True
    finally:
        server.shutdown()
        server.server_close()
    assert hub_answers(endpoint) is True  # remembered: not asked again
    assert hub_answers(f"http://127.0.0.1:{_closed_port()}") is False


def test_offline_reason_names_what_turned_the_hub_off(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert offline_reason(Settings(offline=True)) == "QKATLAS_OFFLINE is set"
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert "cannot be reached" in offline_reason(Settings())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert offline_reason(Settings()) == "HF_HUB_OFFLINE is set"


def test_offline_random_model_without_its_tokenizer_folder_is_one_clear_error(tmp_path):
    err = _one_clear_error(_build("tiny-gpt2", _no_hub_env(tmp_path, QKATLAS_OFFLINE="1")))
    assert "'tiny-gpt2'" in err and str(tmp_path / "empty" / "gpt2-tokenizer") in err
    assert "QKATLAS_OFFLINE is set" in err


def test_unreachable_hub_is_detected_without_any_offline_setting(tmp_path):
    env = _no_hub_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    err = _one_clear_error(_build("bert-base-uncased", env))
    assert "'bert-base-uncased'" in err and "google-bert/bert-base-uncased" in err and "cannot be reached" in err


def test_timm_model_respects_offline(tmp_path):
    err = _one_clear_error(_build("vit-base-patch16-224", _no_hub_env(tmp_path, QKATLAS_OFFLINE="1"),
                                  "--corpus", "images"))
    assert "'vit-base-patch16-224'" in err and "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k" in err
    assert "QKATLAS_OFFLINE is set" in err and "vit-base-patch16-224" in err.rsplit("folder at", 1)[1]


def _put_in_hf_cache(hf_home, repo_id: str, filename: str, write) -> None:
    """Lay out one file as huggingface_hub's cache holds a download of `repo_id` at a commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    write(repo / "snapshots" / commit / filename)


def test_timm_model_in_the_hf_cache_loads_offline(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    torch.manual_seed(0)
    state = timm.create_model(name, pretrained=False).state_dict()
    _put_in_hf_cache(tmp_path / "hf", f"timm/{name}", "model.safetensors",
                     lambda path: save_file({k: v.contiguous() for k, v in state.items()}, str(path)))
    catalog = tmp_path / "models"
    catalog.mkdir()
    (catalog / "cached-vit.toml").write_text(
        f'id = "cached-vit"\nlabel = "ViT-Ti/16 from the cache"\nfamily = "vit"\nmodality = "image"\n'
        f'loader = "timm"\nsource = "{name}"\nlocal = ["vit-tiny"]\ndefault_corpus = "images"\n')
    env = _no_hub_env(tmp_path, QKATLAS_OFFLINE="1", QKATLAS_CATALOG_DIR=str(catalog))
    r = subprocess.run(CLI + ["verify", "cached-vit", "--corpus", "images", "--limit", "1"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert '"ok": true' in r.stdout


@pytest.mark.parametrize("flag", ["QKATLAS_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_flags_need_no_probe(flag, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(flag, "1")
    # An endpoint that would hang a probe: the flag must answer before anything is asked.
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1:9")
    assert flag in offline_reason(Settings.from_env())
