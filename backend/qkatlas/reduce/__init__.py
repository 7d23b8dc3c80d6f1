"""Reduce: one head's joint query/key cloud -> 2-D/3-D coordinates.

methods.py: every method behind one protocol, and REDUCERS, the one list of them.
run.py: `reduce_layout`, the stage's one entry point (batched or in a pool, quality, writing).
executor.py: the process pool that runs per-head tasks and stops when asked.
quality.py: how well a layout keeps neighbours. place.py: new points into a stored layout.
"""

from .methods import REDUCERS, make_reducer

__all__ = ["REDUCERS", "make_reducer"]
