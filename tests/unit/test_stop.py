"""Stopping a build: Ctrl+C, SIGTERM and SIGKILL end it at once, no process outlives it, and
the next run finishes the atlas without recomputing what was done."""

import signal
from pathlib import Path

import pytest

from qkatlas.layout import Layout

from .test_build import load_every_file, projection_stamps, resume_and_check, start_build, wait_for

UMAP_ARGS = ["--model", "tiny-gpt2", "--limit", "30", "--methods", "umap", "--dims", "2", "--workers", "2"]
EXIT_GUARD_S = 30  # fails a build that does not stop instead of hanging the suite; not a timing check


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, ..., starttime (index 19)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its start time (a pid can be reused; the pair cannot)."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    parent_of = {child: int(f[1]) for child, f in stats.items() if f}
    found, frontier = {}, {pid}
    while frontier:
        frontier = {child for child, parent in parent_of.items() if parent in frontier and child not in found}
        found.update({child: stats[child][19] for child in frontier})
    return found


def still_running(processes: dict[int, str]) -> dict[int, str]:
    """Those of `processes` that are still alive (zombies are dead, just not yet reaped)."""
    alive = {}
    for pid, start in processes.items():
        f = _stat(pid)
        if f and f[19] == start and f[0] != "Z":
            alive[pid] = f[0]
    return alive


def mentioning(*words: str) -> list[str]:
    """Command lines of running processes that contain any of `words`."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if p.name.isdigit() and any(w in cmd for w in words) and (_stat(int(p.name)) or ["Z"])[0] != "Z":
            out.append(cmd)
    return out


@pytest.mark.slow  # numba compiles umap-learn in each worker: a minute or more per run on 2 busy cores
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGKILL, -9)],
                         ids=["ctrl-c", "sigterm", "sigkill"])
def test_stopped_build_leaves_no_process_behind_and_resumes(tmp_path, sig, code):
    atlas = tmp_path / "tiny-gpt2__default-n30"
    proc = start_build(tmp_path, *UMAP_ARGS)
    seen: dict[int, str] = {}

    def first_head():
        seen.update(descendants(proc.pid))
        return list(atlas.glob("projections/umap-2d/L*.npy"))

    wait_for(first_head, "a first UMAP head")
    seen.update(descendants(proc.pid))
    assert len(seen) >= 2, "the build should be running its two workers"
    proc.send_signal(sig)
    try:
        assert proc.wait(timeout=EXIT_GUARD_S) == code
    except Exception:
        proc.kill()
        raise
    log = (tmp_path / "build.log").read_text()
    if sig != signal.SIGKILL:
        # the one line is the last thing the user sees: no traceback or warning from the exit after it
        assert log.rstrip().endswith("interrupted; run the same command again to continue where it stopped"), log
        assert "Traceback" not in log
    wait_for(lambda: not still_running(seen), "every worker ending", timeout=EXIT_GUARD_S)
    assert not mentioning(str(tmp_path))
    finished = projection_stamps(atlas)
    assert 1 <= len([n for n in finished if n.endswith(".npy")]) < 8, "the build should have stopped midway"
    load_every_file(atlas)
    resume_and_check(tmp_path, atlas, UMAP_ARGS, finished, [Layout("umap", 2)])
