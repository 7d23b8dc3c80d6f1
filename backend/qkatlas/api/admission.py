"""Admission control for live inference: per model a bounded queue, in front of threads of its own.

A live request waits for its model's turn (one forward pass of a model at a time: the capture
hooks sit on the one shared model) and for one of `live_concurrency` inference threads. At
most `live_queue` requests wait per model and none longer than `live_timeout` seconds: beyond
that the answer is 429 with Retry-After, at once. The inference threads are this module's
own executor, so a flood of live requests never takes the worker threads that cheap reads
use, and the event loop only awaits; they run at a lower CPU priority (nice), so on a busy
machine the event loop and cheap reads are scheduled before them.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import anyio

from ..errors import QkatlasError
from ..settings import Settings

T = TypeVar("T")
BACKGROUND_NICE = 10  # how much nicer than the process the inference and warm-up threads are


def lower_priority() -> None:
    """This thread (and the torch threads it starts, which inherit it) behind the event loop for
    the CPU. Linux sets nice per thread; elsewhere it is left as it is."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
    except (AttributeError, OSError):
        pass


class RetryLater(QkatlasError):
    """Turned away for now: the answer carries `Retry-After: <retry_after>` (seconds)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}  # sent with the error (api/app.py)


class Busy(RetryLater):
    status = 429


class WarmingUp(RetryLater):
    status = 503


@dataclass
class _ModelLine:
    turn: anyio.Lock = field(default_factory=anyio.Lock)
    inside: int = 0  # requests admitted: the one running and those waiting
    seconds: float = 1.0  # moving average of one request's run, for Retry-After


class LiveQueue:
    """`run(model_id, fn)`: fn() in an inference thread once the model's turn comes, or Busy (429)."""

    def __init__(self, settings: Settings):
        self.concurrency = settings.live_concurrency
        self.queue = settings.live_queue
        self.timeout = settings.live_timeout
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="qkatlas-live",
                                            initializer=lower_priority)
        self._threads = anyio.Semaphore(self.concurrency)
        self._lines: dict[str, _ModelLine] = {}

    def _retry_after(self, line: _ModelLine) -> int:
        return math.ceil(line.seconds * max(1, line.inside))

    async def run(self, model_id: str, fn: Callable[[], T]) -> T:
        line = self._lines.setdefault(model_id, _ModelLine())
        if line.inside > self.queue:
            raise Busy(f"live inference of model {model_id!r} is busy: {line.inside - 1} requests wait behind the "
                       f"one running (live_queue={self.queue}); retry later", self._retry_after(line))
        line.inside += 1
        try:
            with anyio.move_on_after(self.timeout) as waited:
                async with line.turn, self._threads:
                    waited.deadline = math.inf  # running now: the timeout was for the wait only
                    t0 = time.monotonic()
                    try:
                        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
                    finally:
                        line.seconds = 0.7 * line.seconds + 0.3 * (time.monotonic() - t0)
            raise Busy(f"waited {self.timeout} s for model {model_id!r} without a turn (live_timeout="
                       f"{self.timeout}); retry later", self._retry_after(line))
        finally:
            line.inside -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
