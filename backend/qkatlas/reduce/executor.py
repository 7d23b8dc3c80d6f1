"""Runs independent per-head tasks in a pool of processes that stops when asked.

`workers` processes, each limited to `cores // workers` BLAS/OpenMP/numba threads, so the
machine is never oversubscribed; one worker runs the tasks in this process. Stopping (Ctrl+C,
SIGTERM turned into KeyboardInterrupt by the build, or any error) cancels the queued tasks and
terminates the workers at once instead of waiting for them, and a worker never outlives its
parent, even one killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Callable

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_JOIN_S = 5.0  # how long a terminated worker gets to exit before it is killed


def plan_workers(requested: int, jobs: int) -> tuple[int, int]:
    """(processes, threads per process) with processes x threads <= cores."""
    cores = os.cpu_count() or 1
    workers = requested if requested > 0 else cores
    workers = max(1, min(workers, cores, jobs))
    return workers, max(1, cores // workers)


def run_tasks(fn: Callable, tasks: list[tuple], workers: int = 0,
              on_done: Callable[[object], None] | None = None) -> list:
    """fn(*task, threads) for every task, in any order; returns the results in completion order
    and passes each to `on_done` as it arrives (in this process)."""
    if not tasks:
        return []
    processes, threads = plan_workers(workers, len(tasks))
    if processes == 1:
        return [_done(fn(*task, threads), on_done) for task in tasks]
    pool = ProcessPoolExecutor(processes, mp_context=get_context("spawn"),  # torch may be loaded: never fork
                               initializer=_init_worker, initargs=(threads, os.getpid()))
    try:
        pending = {pool.submit(fn, *task, threads) for task in tasks}
        results = []
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            results += [_done(f.result(), on_done) for f in finished]
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()
    return results


def _done(result, on_done):
    if on_done:
        on_done(result)
    return result


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel every queued task and end the workers now: `shutdown` alone would let every
    task already handed to a worker run to its end (minutes for a t-SNE head)."""
    processes = list((pool._processes or {}).values())  # Python 3.14 adds pool.terminate_workers()
    manager = pool._executor_manager_thread  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + _JOIN_S
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
    # Let the pool's manager thread finish closing its wakeup pipe before we return: on CPython
    # < 3.12 the interpreter's exit hook writes to that pipe without the pool's lock, and a close
    # racing with it printed "OSError: Bad file descriptor" with a traceback after Ctrl+C.
    if manager is not None:
        manager.join(_JOIN_S)


def _init_worker(threads: int, parent: int) -> None:
    _die_with_parent(parent)
    # Ctrl+C reaches the whole process group; the parent decides what stops, and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Set before numba/BLAS/torch start their pools in this process.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    threadpool_limits(threads)
    # pynndescent's tqdm would make a cross-process lock (a named semaphore) in each worker; a
    # worker ended by a stop cannot release it, and multiprocessing's tracker then printed a
    # "leaked semaphore" warning under the user's "interrupted" line. A worker's bars are never
    # shown, so a plain thread lock does.
    tqdm.set_lock(threading.RLock())


def _die_with_parent(parent: int) -> None:
    """End this worker when the process that started it dies, however it dies: on Linux the
    kernel sends SIGKILL (PR_SET_PDEATHSIG); elsewhere a watchdog thread polls the parent."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the line above could arrange that
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
