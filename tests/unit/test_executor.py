"""The reduction pool stops cleanly: queued tasks cancelled, workers ended, and nothing of the
pool left for the interpreter's exit to trip over."""

import operator
import time
from concurrent.futures import process

import pytest

from qkatlas.reduce.executor import run_tasks


def test_a_stopped_pool_has_closed_its_wakeup_pipe_before_the_stop_returns(monkeypatch):
    # CPython < 3.12 wakes every pool's manager thread at exit without the pool's lock; if that
    # thread is still closing the pipe, the exit prints a traceback after "interrupted" (seen in
    # CI). A slow close makes the race certain: the stop must wait for the close to finish.
    made, plain_init, plain_close = [], process._ThreadWakeup.__init__, process._ThreadWakeup.close

    def init_seen(self):
        plain_init(self)
        made.append(self)

    def close_late(self):
        time.sleep(2.0)
        plain_close(self)

    monkeypatch.setattr(process._ThreadWakeup, "__init__", init_seen)
    monkeypatch.setattr(process._ThreadWakeup, "close", close_late)

    def interrupt(_result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tasks(operator.add, [(i,) for i in range(6)], workers=2, on_done=interrupt)
    assert made, "the tasks should have run in a pool of processes"
    assert all(wakeup._closed for wakeup in made)
