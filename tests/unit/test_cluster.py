"""Building on a Dask cluster (issue 16): real worker processes (distributed.LocalCluster, the real
`dask scheduler` and `qkatlas worker` commands), the real CLI, and the single-machine build as
the reference the cluster's atlas must equal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qkatlas.build import build
from qkatlas.errors import ClusterError
from qkatlas.layout import Layout
from qkatlas.reduce.cluster import GPU, Cluster
from qkatlas.reduce.run import heads_of
from qkatlas.settings import Settings
from qkatlas.store import Atlas

from .test_build import CLI, load_every_file, projection_stamps, resume_and_check, start_build, wait_for
from .test_cli import one_error_line

distributed = pytest.importorskip("distributed", reason="the cluster extra (dask[distributed]) is not installed")

# Numba compiles umap-learn once per process: share one cluster (and this process's compiled code
# for the single-machine reference) among these tests and test_place's.
pytestmark = pytest.mark.xdist_group("numba")

EXIT_GUARD_S = 120  # fails a command that hangs instead of hanging the suite; not a timing check


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, behind nannies that restart a killed one."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as local, distributed.Client(local) as client:
        yield Cluster(client, local.scheduler_address)


class Counts:
    """A Reporter that keeps, per stage, its total and how many heads were reported done."""

    def __init__(self):
        self.stages: dict[str, list[int]] = {}
        self.messages: list[str] = []

    def stage(self, name, total):
        self.stages[name] = [total, 0]

    def advance(self, n=1):
        self.stages[list(self.stages)[-1]][1] += n

    def message(self, text):
        self.messages.append(text)


def same_layouts(a: Atlas, b: Atlas, layout: Layout) -> None:
    for layer, head in heads_of(a):
        np.testing.assert_array_equal(a.projection(layer, head, layout), b.projection(layer, head, layout))
        assert (a.projection_meta(layer, head, layout)["quality"] == b.projection_meta(layer, head, layout)["quality"])


@pytest.mark.slow  # numba compiles umap-learn in each worker process: a minute on 2 busy cores
def test_cluster_build_writes_the_single_machine_atlas_bit_for_bit(tmp_path, cluster):
    args = dict(model_id="tiny-bert", corpus_spec="default", limit=12, methods=["pca", "umap"], dims=[2])
    here = build(Settings(data_dir=tmp_path / "here", workers=1), **args)
    counts = Counts()
    with distributed.get_task_stream(client=cluster.client) as stream:
        there = build(Settings(data_dir=tmp_path / "there", scheduler=cluster.address), reporter=counts, **args)
    a, b = Atlas(here), Atlas(there)
    # PCA is one batched eigendecomposition per layer and UMAP one umap-learn fit per head with a
    # fixed random_state, single-threaded: the same numbers in a worker process as here.
    for layout in (Layout("pca", 2), Layout("umap", 2)):
        same_layouts(a, b, layout)
        assert b.manifest.reductions[layout.key].complete
    ran = [task["key"].split("-")[0] for task in stream.data]  # a task's key: its function's name-uuid
    assert sorted(ran) == ["reduce_head"] * 8 + ["reduce_layer"] * 2  # 2 layers x 4 heads
    assert len({task["worker"] for task in stream.data}) == 2
    # The progress bar counts every head done anywhere on the cluster.
    assert {name: done for name, (total, done) in counts.stages.items() if name.startswith(("PCA", "UMAP"))} \
        == {name: 8 for name in counts.stages if name.startswith(("PCA", "UMAP"))}
    assert f"reducing on the Dask cluster at {cluster.address}" in counts.messages
    assert any(m.startswith("Dask dashboard: http://127.0.0.1:") for m in counts.messages)


UMAP_ARGS = ["--model", "tiny-gpt2", "--limit", "30", "--methods", "umap", "--dims", "2"]


@pytest.mark.slow  # umap-learn: compiled in the workers by the test above, else compiled here
def test_a_worker_killed_mid_head_has_its_head_recomputed_elsewhere_and_nothing_written_twice(tmp_path, cluster):
    atlas = tmp_path / "tiny-gpt2__default-n30"
    proc = start_build(tmp_path, *UMAP_ARGS, "--scheduler", cluster.address)
    try:
        wait_for(lambda: list(atlas.glob("projections/umap-2d/L*.npy")), "a first UMAP head")
        pids = cluster.client.run(os.getpid)

        def busy_worker():  # a worker in the middle of a head, while heads are left to fit
            if len(list(atlas.glob("projections/umap-2d/L*.npy"))) < 8:
                return next((worker for worker, keys in cluster.client.processing().items() if keys), None)

        victim = wait_for(busy_worker, "a worker in the middle of a head")
        finished = projection_stamps(atlas)
        os.kill(pids[victim], signal.SIGKILL)
        assert proc.wait(timeout=600) == 0, (tmp_path / "build.log").read_text()
    finally:
        proc.kill()
    log = (tmp_path / "build.log").read_text()
    assert f"reducing on the Dask cluster at {cluster.address}\nDask dashboard: http://127.0.0.1:" in log
    load_every_file(atlas)
    done = Atlas(atlas)
    assert done.is_complete(Layout("umap", 2)) and done.manifest.reductions["umap-2d"].complete
    after = projection_stamps(atlas)
    assert {name: after[name] for name in finished} == finished, "a head finished before the kill was written again"
    assert len([n for n in after if n.endswith(".npy")]) == len(heads_of(done)) == 8
    assert pids[victim] not in cluster.client.run(os.getpid).values()


def test_batched_fits_go_to_gpu_workers_and_per_head_fits_to_the_others(tmp_path, cluster):
    worker = subprocess.Popen(CLI + ["worker", cluster.address, "--gpu", "--no-dashboard"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(r.get(GPU) for r in cluster.workers().values()), "the GPU worker joining",
                 timeout=EXIT_GUARD_S)
        gpu = next(address for address, r in cluster.workers().items() if r.get(GPU))
        assert cluster.device == "cuda"
        on_gpu = cluster.run_tasks(where, [(i,) for i in range(4)], gpu=True)
        elsewhere = cluster.run_tasks(where, [(i,) for i in range(8)])
        assert set(on_gpu) == {gpu} and gpu not in elsewhere
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=EXIT_GUARD_S)
    wait_for(lambda: cluster.device == "cpu", "the GPU worker leaving", timeout=EXIT_GUARD_S)


def where(_task: int, _threads: int) -> str:
    """A task that says which worker ran it."""
    return distributed.get_worker().address


def test_workers_that_cannot_see_the_atlas_folder_are_named(tmp_path, cluster):
    with pytest.raises(ClusterError, match=r"cannot see the atlas folder .*/elsewhere: mount the data dir"):
        cluster.check_sees(str(tmp_path / "elsewhere"))
    cluster.check_sees(str(tmp_path))


def test_an_unreachable_scheduler_is_one_error_line_before_any_capture(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = subprocess.run(CLI + ["--data-dir", str(tmp_path), "build", "--model", "tiny-gpt2", "--scheduler",
                              f"tcp://127.0.0.1:{port}"], capture_output=True, text=True, timeout=EXIT_GUARD_S,
                       env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    one_error_line(r, f"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'")
    assert not list(tmp_path.glob("*/manifest.json"))


def test_a_worker_needs_a_scheduler_address():
    r = subprocess.run(CLI + ["worker"], capture_output=True, text=True, timeout=EXIT_GUARD_S,
                       env={k: v for k, v in os.environ.items() if k != "QKATLAS_SCHEDULER"})
    one_error_line(r, "qkatlas worker tcp://HOST:8786")


# -- the scheduler dies ---------------------------------------------------------------------


class Scheduler:
    """A real `dask scheduler` process and one `qkatlas worker` process attached to it."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=(folder / "scheduler.log").open("w"))
        self.address = wait_for(lambda: file.exists() and json.loads(file.read_text() or "{}").get("address"),
                                "the scheduler starting", timeout=EXIT_GUARD_S)
        self.worker = subprocess.Popen(CLI + ["worker", self.address, "--nworkers", "1", "--no-dashboard"],
                                       start_new_session=True, stdout=subprocess.DEVNULL,
                                       stderr=(folder / "worker.log").open("w"))

    def stop(self) -> None:
        """End both, and every process they started (their sessions are theirs alone)."""
        for proc in (self.worker, self.scheduler):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=EXIT_GUARD_S)


TSNE_ARGS = ["--model", "tiny-gpt2", "--limit", "30", "--methods", "tsne", "--dims", "2"]


@pytest.mark.slow  # two schedulers and workers start, and eight t-SNE heads are fitted
def test_a_build_whose_scheduler_dies_says_so_in_one_line_and_resumes_on_a_new_one(tmp_path):
    atlas = tmp_path / "tiny-gpt2__default-n30"
    first = Scheduler(tmp_path / "first")
    try:
        proc = start_build(tmp_path, *TSNE_ARGS, "--scheduler", first.address)
        wait_for(lambda: list(atlas.glob("projections/tsne-2d/L*.npy")), "a first t-SNE head")
        first.scheduler.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=EXIT_GUARD_S) == 2
    finally:
        first.stop()
    log = (tmp_path / "build.log").read_text()
    assert log.strip().splitlines()[-1] == (
        f"error: lost the Dask scheduler at {first.address} mid-build; the heads written so far are kept: start it "
        "again and run the same command to continue")
    assert "Traceback" not in log
    finished = projection_stamps(atlas)
    assert 1 <= len([name for name in finished if name.endswith(".npy")]) < 8, "the scheduler should have died midway"
    second = Scheduler(tmp_path / "second")
    try:
        resume_and_check(tmp_path, atlas, [*TSNE_ARGS, "--scheduler", second.address], finished, [Layout("tsne", 2)])
    finally:
        second.stop()


# -- the compose `cluster` profile (read without a Docker engine; tests/unit/test_compose.py runs
# `docker compose --profile cluster config` where a compose binary exists) --------------------


def test_compose_cluster_profile_is_a_scheduler_workers_and_a_build_on_the_apis_volume():
    import yaml

    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert cluster == {"scheduler", "worker", "gpu-worker", "cluster-build"}
    port = services["scheduler"]["command"][services["scheduler"]["command"].index("--port") + 1]
    address = f"tcp://scheduler:{port}"
    assert services["scheduler"]["entrypoint"] == ["dask", "scheduler"]
    assert any(p.endswith(":8787") for p in services["scheduler"]["ports"])  # the dashboard
    for name in ("worker", "gpu-worker"):
        assert services[name]["entrypoint"] == ["qkatlas", "worker"] and services[name]["command"][0] == address
    assert "--gpu" in services["gpu-worker"]["command"] and "--gpu" not in services["worker"]["command"]
    assert services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert "deploy" not in services["worker"]
    assert services["cluster-build"]["entrypoint"] == ["qkatlas", "build"]
    assert services["cluster-build"]["environment"]["QKATLAS_SCHEDULER"] == address
    # One volume at one path for all, the API (the default service) included: the path a build
    # sends its workers is where each of them finds the atlas.
    for name in cluster | {"qkatlas"}:
        assert "atlases:/data/atlases" in services[name]["volumes"], name
    # The image the workers run holds Dask: the Dockerfile installs the cluster extra.
    assert "['optional-dependencies']['cluster']" in (root / "Dockerfile").read_text()
