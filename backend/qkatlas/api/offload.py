"""Where a request's work runs: on the event loop when it is a memory lookup, else in a worker thread."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool


async def cached_or_in_thread(fn, *args):
    """fn(*args): on the event loop when its answer is already cached (a memory lookup: no thread
    hop), else in a worker thread, since building it reads files and computes.

    `fn` takes `cached_only=True` and then answers None unless the value is in memory.
    """
    hit = fn(*args, cached_only=True)
    return hit if hit is not None else await run_in_threadpool(fn, *args)
