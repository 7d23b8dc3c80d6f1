"""The command line as a new user meets it: settings from the environment, flags, versions, errors."""

import subprocess
import sys

import pytest

from qkatlas import __version__
from qkatlas.errors import InvalidInput
from qkatlas.settings import Settings

CLI = [sys.executable, "-m", "qkatlas"]


def run(*args, env=None):
    import os

    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def one_error_line(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("env,words", [
    ({"QKATLAS_PORT": "abc"}, ["QKATLAS_PORT='abc'", "whole number"]),
    ({"QKATLAS_PORT": "70000"}, ["port must be between 1 and 65535", "70000"]),
    ({"QKATLAS_OFFLINE": "maybe"}, ["QKATLAS_OFFLINE='maybe'", "yes/no"]),
    ({"QKATLAS_BATCH_SIZE": "0"}, ["batch_size must be at least 1", "QKATLAS_BATCH_SIZE"]),
])
def test_bad_environment_values_are_one_error_line(env, words):
    one_error_line(run("models", env=env), *words)


def test_bad_flags_are_one_error_line_not_a_usage_block(tmp_path):
    one_error_line(run("--data-dir", str(tmp_path), "build", "--model", "tiny-gpt2", "--batch-size", "0"),
                   "batch_size must be at least 1, got 0", "--batch-size")
    one_error_line(run("--data-dir", str(tmp_path), "info", "x", "--layer", "3"), "--layer and --head go together")


def test_version_is_printed():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_settings_round_trip_through_the_environment(tmp_path):
    s = Settings(data_dir=tmp_path / "d", port=9001, offline=True, workers=3, demo_methods="pca")
    assert Settings.from_env(s.to_env()) == s


def test_yes_and_no_words_parse_and_others_fail():
    assert Settings.from_env({"QKATLAS_OFFLINE": "On"}).offline is True
    assert Settings.from_env({"QKATLAS_OFFLINE": "0"}).offline is False
    with pytest.raises(InvalidInput):
        Settings.from_env({"QKATLAS_OFFLINE": "2"})


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Running (a zombie is dead: only its exit status is left for a parent that may be gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc."""
    import os

    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        frontier += kids
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig,group", [("SIGINT", True), ("SIGTERM", False)], ids=["ctrl-c", "docker-stop"])
def test_demo_builds_into_the_data_dir_given_on_the_command_line_and_stops_cleanly(tmp_path, sig, group):
    """`qkatlas --data-dir X demo` builds into X (not ./atlases), and Ctrl+C (SIGINT to the whole
    process group, as a terminal sends it) or SIGTERM to the demo alone (`docker stop`), while the
    background builder is still at work, leaves no process behind and prints no traceback."""
    import os
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("QKATLAS_")}
    # PCA first, then UMAP, whose first fit compiles for a minute: the builder is busy when stopped
    env |= {"QKATLAS_DEMO_MODELS": "tiny-bert", "QKATLAS_DEMO_METHODS": "pca,umap"}
    log = tmp_path / "demo.log"
    with log.open("w") as sink:  # a file, not a pipe: nothing blocks on a full pipe
        proc = subprocess.Popen(CLI + ["--data-dir", str(tmp_path / "x"), "demo", "--port", str(free_port())],
                                cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    manifest = tmp_path / "x" / "tiny-bert__default" / "manifest.json"
    hang_guard = time.monotonic() + 300
    while not manifest.is_file() and proc.poll() is None and time.monotonic() < hang_guard:
        time.sleep(0.2)
    family = children_of(proc.pid)
    assert any(alive(p) for p in family), "the background builder should still be running"
    if group:
        os.killpg(proc.pid, getattr(signal, sig))
    else:
        proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    printed = log.read_text()
    assert manifest.is_file(), printed
    assert not (tmp_path / "atlases").exists()
    assert "Traceback" not in printed, printed
    assert "background build stopped" in printed, printed
    time.sleep(1)
    left = [p for p in family if alive(p)]
    assert left == [], [open(f"/proc/{p}/cmdline").read().replace("\0", " ") for p in left]
