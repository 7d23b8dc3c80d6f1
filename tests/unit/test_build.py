"""Building atlases end to end with the real CLI and real tiny models."""

import json
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
    assert "atlas 'tiny-gpt2__default-n50' is ready" in r.stderr  # the id a newcomer must use
    info = json.loads(run_cli("info", path.name, data_dir=tmp_path, check=True).stdout)
    assert info["id"] == path.name and info["projections"] == {"pca-2d": 8, "pca-3d": 8}
    assert info["corpus"]["items"] == 50
    head = json.loads(run_cli("info", str(path), "--layer", "1", "--head", "2", check=True).stdout)
    assert head["atlas"] == path.name and (head["layer"], head["head"]) == (1, 2)
    assert set(head["projections"]) == {"pca-2d", "pca-3d"} and "corpus" not in head


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


# -- killed builds ------------------------------------------------------------------------

HANG_GUARD_S = 600  # fails a build that hangs instead of hanging the suite; not a timing check


def wait_for(condition, what: str, timeout: float = HANG_GUARD_S):
    """Poll `condition` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"hang guard: {what} did not happen within {timeout} s")
        time.sleep(0.02)
    return result


def start_build(data_dir: Path, *args: str) -> subprocess.Popen:
    """The real CLI building in the background; its stderr goes to data_dir/build.log."""
    log = (data_dir / "build.log").open("w")
    return subprocess.Popen(CLI + ["--data-dir", str(data_dir), "build", *args], stdout=subprocess.DEVNULL, stderr=log)


def build_stage(data_dir: Path, atlas: str) -> str | None:
    """The stage a running build reports in the data dir (what `GET /api/builds` shows)."""
    try:
        return json.loads((data_dir / ".builds" / f"{atlas}.json").read_text())["stage"]
    except (OSError, ValueError):
        return None


def projection_stamps(atlas: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime, size) of both files of every finished head: a rewrite, even atomic, changes
    them. A head is finished once its .npy exists (its .json goes first), so the .json of a head
    killed between the two is left out: the next run rightly writes it again."""
    return {str(p.relative_to(atlas)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for npy in (atlas / "projections").glob("*/L*.npy") for p in (npy, npy.with_suffix(".json"))}


def load_every_file(atlas: Path) -> int:
    """Open every file of the atlas with the plain tool for its format; returns how many."""
    readers = {".npy": np.load, ".npz": lambda p: dict(np.load(p)), ".json": lambda p: json.loads(p.read_text()),
               ".parquet": pq.read_table}
    files = [p for p in atlas.rglob("*") if p.is_file() and not p.name.startswith(".")]
    for p in files:
        readers.get(p.suffix, Path.read_bytes)(p)
    return len(files)


def resume_and_check(data_dir: Path, atlas: Path, args: list[str], finished: dict, layouts: list[Layout]) -> None:
    """Rerun the build: it completes, every file loads, and no finished head was written again."""
    r = run_cli("build", *args, data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    after = projection_stamps(atlas)
    assert {name: after.get(name) for name in finished} == finished
    load_every_file(atlas)
    done = Atlas(atlas)
    assert all(done.is_complete(layout) and done.manifest.reductions[layout.key].complete for layout in layouts)
    for layout in layouts:
        assert done.projection(1, 3, layout).shape == (2 * done.n_tokens, layout.dim)


# The whole default corpus, so capture and the PCA heads take seconds, not milliseconds.
PCA_ARGS = ["--model", "tiny-gpt2", "--methods", "pca", "--dims", "2,3", "--batch-size", "16"]
PCA_LAYOUTS = [Layout("pca", 2), Layout("pca", 3)]


def test_build_killed_in_capture_captures_again_and_completes(tmp_path):
    atlas = tmp_path / "tiny-gpt2__default"
    proc = start_build(tmp_path, *PCA_ARGS)
    wait_for(lambda: build_stage(tmp_path, atlas.name) == "capture", "the capture stage")
    proc.kill()
    proc.wait()
    assert not (atlas / "manifest.json").exists(), "the kill should have landed during capture"
    resume_and_check(tmp_path, atlas, PCA_ARGS, {}, PCA_LAYOUTS)


def test_build_killed_among_pca_heads_resumes_without_recomputing_finished_heads(tmp_path):
    atlas = tmp_path / "tiny-gpt2__default"
    proc = start_build(tmp_path, *PCA_ARGS)
    wait_for(lambda: list(atlas.glob("projections/pca-2d/L*.npy")), "a first PCA head")
    proc.kill()
    proc.wait()
    finished = projection_stamps(atlas)
    heads = [name for name in finished if name.endswith(".npy")]
    assert 1 <= len(heads) < 16, "the kill should have landed among the PCA heads"
    assert all((atlas / name).with_suffix(".json").is_file() for name in heads)  # the .json is written first
    resume_and_check(tmp_path, atlas, PCA_ARGS, finished, PCA_LAYOUTS)


def test_serve_on_a_taken_port_says_so(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = run_cli("serve", "--port", str(port), data_dir=tmp_path)
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
