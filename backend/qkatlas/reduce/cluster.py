"""Runs the reduce stage's tasks on a Dask cluster: the executor when a build is given a scheduler.

Tasks carry the atlas path, never arrays: every worker reads the vectors from, and writes its
projection files atomically into, the same atlas folder on a shared filesystem, so no array
passes through the scheduler. Batched fits (`gpu=True`) go only to workers that declare the
GPU resource (`dask worker --resources GPU=1`, `qkatlas worker --gpu`); the rest prefer the
workers without it. Dask reruns the task of a worker that dies on another one; a task whose
projection is already there writes nothing (run.py), so a head is never written twice.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import ClusterError, InvalidInput
from ..progress import Reporter

GPU = "GPU"  # the Dask worker resource that marks a worker with a GPU for batched fits
WORKERS_WAIT_S = 60  # how long a build waits for a first worker to join before it says so


@dataclass(frozen=True)
class Cluster:
    """A connected Dask client and the scheduler address it was given (for messages)."""

    client: object  # distributed.Client
    address: str

    def workers(self) -> dict[str, dict]:
        """{worker address: its declared resources} for every worker now connected."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {address: dict(w.get("resources") or {}) for address, w in info.items()}

    @property
    def device(self) -> str:
        """Where the cluster runs batched fits: "cuda" when a worker declares a GPU."""
        return "cuda" if any(r.get(GPU) for r in self.workers().values()) else "cpu"

    def check_sees(self, folder: str) -> None:
        """Every worker must see `folder` (the atlas) at the same path as this process."""
        if not self.workers():
            with suppress(TimeoutError):
                self.client.wait_for_workers(1, timeout=WORKERS_WAIT_S)
        seen = self.client.run(os.path.isdir, folder)
        if not seen:
            raise ClusterError(f"no worker has joined the Dask scheduler at {self.address} within {WORKERS_WAIT_S} s; "
                               f"start some with `qkatlas worker {self.address}`")
        blind = sorted(worker for worker, ok in seen.items() if not ok)
        if blind:
            named = ", ".join(blind[:3]) + (f" and {len(blind) - 3} more" if len(blind) > 3 else "")
            raise ClusterError(f"Dask worker {named} cannot see the atlas folder {folder}: mount the data dir at "
                               "the same path on every worker")

    def run_tasks(self, fn: Callable, tasks: list[tuple], on_done: Callable[[object], None] | None = None, *,
                  gpu: bool = False) -> list:
        """fn(*task, threads) for every task on the cluster, as executor.run_tasks does in a local
        pool: results in completion order, each passed to `on_done` (in this process) on arrival.

        One thread per task: a worker runs as many tasks at once as it has threads (`--nthreads`),
        and its nanny already limits BLAS/OpenMP to one thread each."""
        from distributed import as_completed

        placement = {"resources": {GPU: 1}} if gpu else self._cpu_placement()
        futures = [self.client.submit(fn, *task, 1, pure=False, **placement) for task in tasks]
        results = []
        try:
            for future in as_completed(futures, loop=self.client.loop):
                results.append(self._result(future))
                if on_done:
                    on_done(results[-1])
        except BaseException:
            if self.client.status == "running":  # Ctrl+C or an error: drop what has not started
                with suppress(Exception):
                    self.client.cancel(futures)
            raise
        return results

    def _cpu_placement(self) -> dict:
        """Prefer the workers without a GPU, and fall back on any worker if none of those is left."""
        cpu = [address for address, resources in self.workers().items() if not resources.get(GPU)]
        return {"workers": cpu, "allow_other_workers": True} if cpu else {}

    def _result(self, future):
        from concurrent.futures import CancelledError

        from distributed import KilledWorker
        from distributed.comm import CommClosedError

        lost = ClusterError(f"lost the Dask scheduler at {self.address} mid-build; the heads written so far are "
                            "kept: start it again and run the same command to continue")
        if future.cancelled():  # the client cancels every future when it loses the scheduler
            raise lost
        try:
            return future.result()
        except (CommClosedError, CancelledError):  # it died between the task's end and its result's
            raise lost from None
        except KilledWorker as e:  # not one unlucky worker: the task itself kills them (out of memory?)
            raise ClusterError(f"reduce task {e.task} ended all {e.allowed_failures + 1} workers that ran it, the "
                               f"last {e.last_worker.address}; see the workers' logs") from None


@contextmanager
def connect(address: str, reporter: Reporter) -> Iterator[Cluster]:
    """A Cluster on the Dask scheduler at `address`, closed on exit; says where its dashboard is."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("building on a cluster needs Dask distributed: pip install 'qkatlas[cluster]'") from None
    try:
        client = Client(address, set_as_default=False)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"--scheduler {address!r} is not a Dask scheduler address like tcp://HOST:8786 ({e})") \
            from None
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    with _quiet("distributed", "distributed.client"):  # dask's config gives the client's logger its own level
        try:
            reporter.message(f"reducing on the Dask cluster at {address}")
            reporter.message(f"Dask dashboard: {_dashboard(client)}")
            yield Cluster(client, address)
        finally:
            client.close(timeout=5)


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Within the block, `loggers` say nothing below CRITICAL: what goes wrong with the cluster
    reaches the user as one ClusterError line, not as the client's log of its reconnect attempts
    (tracebacks included) after the scheduler died."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _dashboard(client) -> str:
    try:
        return client.dashboard_link
    except KeyError:  # the scheduler runs without bokeh
        return "none (install bokeh beside the scheduler to have one)"


def worker_command(address: str, nworkers: int | None, gpu: bool, extra: list[str]) -> list[str]:
    """The `dask worker` command line of a reduce worker: run by this Python, where qkatlas (which
    its tasks import) is installed; one thread per process, as the local pool runs one head per
    core; `gpu` declares the GPU resource that batched fits ask for."""
    if not address:
        raise InvalidInput("give the Dask scheduler's address: qkatlas worker tcp://HOST:8786 (or QKATLAS_SCHEDULER)")
    if nworkers is not None and nworkers < 0:
        raise InvalidInput(f"--nworkers must be 0 (one per core) or more, got {nworkers}")
    if importlib.util.find_spec("distributed") is None:
        raise ClusterError("a worker needs Dask distributed: pip install 'qkatlas[cluster]'")
    processes = nworkers or (1 if gpu else os.cpu_count() or 1)
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", str(processes), "--nthreads", "1"]
    return argv + (["--resources", f"{GPU}=1"] if gpu else []) + extra
