"""Building atlases end to end with the real CLI and real tiny models."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from qkatlas.joint import attention, to_joint
from qkatlas.layout import Layout
from qkatlas.store import Atlas

CLI = [sys.executable, "-m", "qkatlas"]


def run_cli(*args, data_dir=None, check=False):
    cmd = CLI + (["--data-dir", str(data_dir)] if data_dir else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=300)


def test_built_atlas_holds_provenance_vectors_and_every_projection(tiny_text_atlas):
    atlas = Atlas(tiny_text_atlas)
    m = atlas.manifest
    assert (m.layers, m.heads, m.head_dim) == (2, 4, 16)
    assert m.model.random is True and "random" in m.model.label
    assert m.corpus.items == 24 and m.causal is True
    assert m.reductions["pca-3d"].complete
    tokens = pq.read_table(tiny_text_atlas / "tokens.parquet")
    assert tokens.num_rows == m.tokens == atlas.queries(0).shape[0]
    assert atlas.progress() == {"pca-2d": 8, "pca-3d": 8}
    assert atlas.projection(1, 3, Layout("pca", 3)).shape == (2 * m.tokens, 3)
    meta = atlas.projection_meta(1, 3, Layout("pca", 2))
    assert 0 <= meta["quality"]["knn_recall@10"] <= 1 and len(meta["components"]) == 2


def test_stored_joint_space_keeps_each_sentences_attention(tiny_text_atlas):
    atlas = Atlas(tiny_text_atlas)
    q, k = atlas.head_vectors(1, 2)
    t, s = atlas.joint["translation"][1, 2], float(atlas.joint["scale"][1, 2])
    X = to_joint(q, k, t, s)
    n = len(q)
    for item in range(3):
        a, b = atlas.item_offsets[item], atlas.item_offsets[item + 1]
        before = attention(q[a:b], k[a:b], atlas.scaling(1), causal=True)
        after = attention(X[a:b], X[n + a:n + b], atlas.scaling(1), causal=True)
        np.testing.assert_allclose(after, before, atol=1e-5)


def test_image_atlas_stores_the_pixels_the_model_saw(tiny_image_atlas):
    atlas = Atlas(tiny_image_atlas)
    from PIL import Image

    img = Image.open(atlas.image_path(0))
    assert img.size == (64, 64)
    assert atlas.manifest.image.model_dump() == {"size": 64, "patch": 16, "grid": 4, "prefix_tokens": 1}
    assert atlas.n_tokens == 6 * 17


def test_build_and_info_from_the_command_line(tmp_path):
    r = run_cli("build", "--model", "tiny-gpt2", "--corpus", "default", "--limit", "50", "--methods", "pca",
                data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path == tmp_path / "tiny-gpt2__default-n50"
    info = json.loads(run_cli("info", path.name, data_dir=tmp_path, check=True).stdout)
    assert info["projections"] == {"pca-2d": 8, "pca-3d": 8}
    assert info["corpus"]["items"] == 50
    head = json.loads(run_cli("info", str(path), "--layer", "1", "--head", "2", check=True).stdout)
    assert set(head["head"]["projections"]) == {"pca-2d", "pca-3d"}


@pytest.mark.parametrize("args,message", [
    (["build", "--model", "nope"], "unknown model 'nope'"),
    (["build", "--model", "tiny-gpt2", "--corpus", "missing.txt"], "unknown corpus 'missing.txt'"),
    (["build", "--model", "tiny-gpt2", "--limit", "0"], "--limit must be at least 1"),
    (["build", "--model", "tiny-gpt2", "--methods", "lda"], "unknown method 'lda'"),
    (["build", "--model", "tiny-gpt2", "--dims", "4"], "--dims must be 2 and/or 3"),
    (["build", "--model", "tiny-vit", "--corpus", "default", "--limit", "2", "--layers", "5"],
     "layer 5 does not exist"),
    (["info", "nothing-here"], "unknown atlas 'nothing-here'"),
    (["verify", "nope"], "unknown model 'nope'"),
])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, args, message):
    r = run_cli(*args, data_dir=tmp_path)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
    assert sum(line.startswith("error:") for line in r.stderr.splitlines()) == 1


def test_bad_corpus_files_and_unwritable_data_dir(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    r = run_cli("build", "--model", "tiny-gpt2", "--corpus", str(empty), data_dir=tmp_path)
    assert r.returncode == 2 and "empty.txt" in r.stderr and "Traceback" not in r.stderr
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "broken.png").write_bytes(b"not an image")
    r = run_cli("build", "--model", "tiny-vit", "--corpus", str(images), data_dir=tmp_path)
    assert r.returncode == 2 and "broken.png" in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("build", "--model", "tiny-gpt2", "--limit", "2", data_dir=blocker / "sub")
    assert r.returncode == 2 and "not writable" in r.stderr and "Traceback" not in r.stderr


def test_verify_command_prints_error_within_tolerance():
    r = run_cli("verify", "tiny-gpt2", "--limit", "4", check=True)
    result = json.loads(r.stdout)
    assert result["max_abs_err"] <= 1e-4 and result["ok"] is True


def test_killed_build_resumes_without_recomputing_finished_heads(tmp_path):
    args = CLI + ["--data-dir", str(tmp_path), "build", "--model", "tiny-gpt2", "--limit", "30",
                  "--methods", "pca,tsne", "--dims", "2", "--workers", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "tiny-gpt2__default-n30" / "projections" / "tsne-2d"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(folder.glob("*.npy"))) < 2:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npy")}
    assert 2 <= len(finished) < 8, "the build should have been killed midway"
    assert not [p for p in folder.iterdir() if p.suffix == ".npy" and p.name not in finished]
    r = run_cli("build", "--model", "tiny-gpt2", "--limit", "30", "--methods", "pca,tsne", "--dims", "2",
                "--workers", "1", data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npy")}
    assert len(after) == 8
    assert all(after[name] == mtime for name, mtime in finished.items())
    assert not list(folder.glob(".*.tmp"))


def test_serve_on_a_taken_port_says_so(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = run_cli("serve", "--port", str(port), data_dir=tmp_path)
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
