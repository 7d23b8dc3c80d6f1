"""Rebuilds never expose a mixed state: a new version is written beside the live one and
switched to atomically; a killed rebuild leaves the old version served; a full disk is one line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qkatlas.build import build
from qkatlas.settings import Settings
from qkatlas.store import Atlas
from qkatlas.versions import FOLDER, build_lock

CLI = [sys.executable, "-m", "qkatlas"]
HANG_GUARD_S = 300  # only so that a hung build fails the test instead of the run


def corpus_file(path: Path, word: str, lines: int) -> Path:
    path.write_text("".join(f"The {word} number {i} sat on a mat near the door.\n" for i in range(lines)))
    return path


def token_texts(atlas_dir: Path) -> str:
    atlas = Atlas(atlas_dir)
    return "".join(atlas.tokens.column("text").to_pylist())


def test_a_rebuild_with_a_changed_corpus_switches_versions_atomically(tmp_path):
    settings = Settings(data_dir=tmp_path / "atlases", workers=1)
    corpus = corpus_file(tmp_path / "my.txt", "cat", 6)
    link = build(settings, "tiny-gpt2", str(corpus), methods=["pca"], dims=[2])
    reader = Atlas(link)  # a server's view, opened before the rebuild
    old_tokens = reader.tokens.num_rows
    corpus_file(corpus, "giraffe", 9)
    build(settings, "tiny-gpt2", str(corpus), methods=["pca"], dims=[2])

    assert link.is_symlink() and "giraffe" in token_texts(link) and "cat" not in token_texts(link)
    # the old reader still sees one whole, consistent version
    assert reader.tokens.num_rows == old_tokens and reader.head_vectors(1, 2)[0].shape[0] == old_tokens
    assert reader.projection(1, 2, reader_layout()).shape == (2 * old_tokens, 2)
    assert len(list((tmp_path / "atlases" / FOLDER / link.name).iterdir())) == 2  # live + previous

    corpus_file(corpus, "otter", 7)
    build(settings, "tiny-gpt2", str(corpus), methods=["pca"], dims=[2])
    assert len(list((tmp_path / "atlases" / FOLDER / link.name).iterdir())) == 2  # the oldest is gone


def reader_layout():
    from qkatlas.layout import Layout

    return Layout("pca", 2)


def test_a_killed_rebuild_leaves_the_old_version_served_and_the_next_run_cleans_up(tmp_path):
    data_dir = tmp_path / "atlases"
    corpus = corpus_file(tmp_path / "my.txt", "cat", 8)
    first = subprocess.run(CLI + ["--data-dir", str(data_dir), "build", "--model", "tiny-gpt2", "--corpus",
                                  str(corpus), "--methods", "pca", "--dims", "2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    link = data_dir / "tiny-gpt2__my.txt"
    live_before = link.resolve()

    corpus_file(corpus, "giraffe", 400)  # long enough that the kill lands in the capture
    proc = subprocess.Popen(CLI + ["--data-dir", str(data_dir), "build", "--model", "tiny-gpt2", "--corpus",
                                   str(corpus), "--methods", "pca", "--dims", "2", "--batch-size", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    versions = data_dir / FOLDER / link.name
    guard = time.monotonic() + HANG_GUARD_S
    while len([p for p in versions.iterdir() if p.is_dir()]) < 2 and proc.poll() is None:
        assert time.monotonic() < guard
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert link.resolve() == live_before  # never switched: the old version is what is served
    served = Atlas(link)
    assert served.manifest.corpus.items == 8 and "giraffe" not in token_texts(link)
    for layer in range(served.layers):
        assert served.queries(layer).shape[0] == served.n_tokens

    again = subprocess.run(CLI + ["--data-dir", str(data_dir), "build", "--model", "tiny-gpt2", "--corpus",
                                  str(corpus), "--methods", "pca", "--dims", "2"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert Atlas(link).manifest.corpus.items == 400 and "giraffe" in token_texts(link)
    remaining = sorted(p.name for p in versions.iterdir())
    assert remaining == sorted([live_before.name, link.resolve().name])  # the killed version is gone
    assert not list(link.resolve().rglob(".*.tmp"))


def test_a_second_build_of_the_same_atlas_is_refused_while_one_runs(tmp_path):
    data_dir = tmp_path / "atlases"
    with build_lock(data_dir, "tiny-gpt2__default-n3"):
        r = subprocess.run(CLI + ["--data-dir", str(data_dir), "build", "--model", "tiny-gpt2", "--limit", "3"],
                           capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: another build of atlas 'tiny-gpt2__default-n3' is running; wait for it or stop it first"]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_error_line_and_nothing_half_written(small_disk):
    r = subprocess.run(CLI + ["--data-dir", str(small_disk), "build", "--model", "tiny-gpt2", "--limit", "300",
                              "--methods", "pca", "--dims", "2"], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot write atlas 'tiny-gpt2__default-n300': No space left on device")
    assert "Traceback" not in r.stderr
    assert not list(small_disk.rglob("*.tmp"))
    for npy in small_disk.rglob("*.npy"):  # whatever was written is whole
        np.load(npy)
    for js in small_disk.rglob("*.json"):
        json.loads(js.read_text())
