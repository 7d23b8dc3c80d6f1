"""Reduce: one head's joint query/key cloud -> 2-D/3-D coordinates.

Every method is an estimator with the same tiny protocol (`name`, `params`,
`fit_transform(X) -> Y`); REDUCERS maps a method name to a factory `(dim, seed, threads)`.
executor.py runs (head, method, dim) jobs in parallel and writes each as soon as it is done.
"""

from .methods import REDUCERS, make_reducer

__all__ = ["REDUCERS", "make_reducer"]
