"""Live inference for the API: one loaded model per catalog id, shared by every request.

The only API module that touches torch (imported on first use, so a server that never runs
live inference never loads it). Loading is slow, so a model stays loaded, and the models of
the atlases present are loaded when the server starts (`warm_up`, in a thread of its own), and
so is the code that places points into layouts whose first placement compiles (UMAP: numba).
While a model or a placement warms up, requests for it are answered 503 with Retry-After
(`check_warm`) instead of waiting. A lock per model serialises its forward passes, and one lock
serialises loading across models (random-init models seed torch's one global generator: two
loads at once would interleave their draws and build other weights than the atlas's). Callers run these
functions off the event loop (api/admission.py's threads).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..catalog import ModelEntry
from ..errors import ModelUnavailable, QkatlasError, TooLarge, UnknownModel, without_paths
from ..reduce.methods import REDUCERS
from ..settings import Settings
from .admission import WarmingUp, lower_priority

log = logging.getLogger("qkatlas")
WARMING_RETRY_S = 5


def placement_key(method: str) -> str:
    """How a placement warm-up is named in /readyz's `warming` and in messages."""
    return f"{REDUCERS[method].label} placement"


@dataclass
class LiveCapture:
    """One input through the model: its tokens and every layer's q/k, float32 (n, heads, head_dim)."""

    tokens: list[dict]  # text, position, special, row, col
    q: list[np.ndarray]
    k: list[np.ndarray]
    scaling: list[float]
    causal: bool


def public_load_error(entry: ModelEntry, e: Exception) -> QkatlasError:
    """What a client is told of a model that did not load: the loader's message (a QkatlasError's
    own kind, anything else ModelUnavailable) with the server's folders cut to their last part.
    The whole message, paths and all, goes to the server's log for whoever runs it."""
    log.warning("live model %s not loaded: %s", entry.id, e, exc_info=not isinstance(e, QkatlasError))
    if isinstance(e, QkatlasError):
        public = copy.copy(e)
        public.args = (without_paths(str(e)),)
        return public
    return ModelUnavailable(f"model {entry.id!r} could not be loaded here ({type(e).__name__}: "
                            f"{without_paths(next(iter(str(e).splitlines()), ''))})")


class LiveModels:
    """The catalog's models, by id, loaded on first use; `catalog` is read once, when the app starts."""

    def __init__(self, settings: Settings, catalog: dict[str, ModelEntry]):
        self.settings = settings
        self.catalog = catalog
        self._models: dict = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._loading = threading.Lock()
        self._warming: dict[str, float] = {}  # model id or placement_key -> when its warm-up was asked for
        self._placing: set[str] = set()  # methods whose placement has warmed up in this process
        self._warmer = ThreadPoolExecutor(1, thread_name_prefix="qkatlas-warm-up", initializer=lower_priority)
        self._threads_set = False

    def _lock(self, model_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(model_id, threading.Lock())

    def entry(self, model_id: str) -> ModelEntry:
        """The catalog entry of `model_id`; UnknownModel (404) naming the models there are."""
        if model_id not in self.catalog:
            raise UnknownModel(f"unknown model {model_id!r}; the catalog has: {', '.join(sorted(self.catalog))}")
        return self.catalog[model_id]

    def _loaded(self, entry: ModelEntry):
        """The model of `entry`, loaded on first use (ModelUnavailable is not remembered: weights may appear)."""
        if entry.id not in self._models:
            from ..capture.loader import load_model

            with self._guard:
                self._warming.setdefault(entry.id, time.monotonic())
            try:
                with self._loading:
                    if entry.id not in self._models:
                        self._torch_threads()
                        self._models[entry.id] = load_model(entry, self.settings)
            except Exception as e:  # noqa: BLE001 - every failure to load is an answer, never a 500
                raise public_load_error(entry, e) from None
            finally:
                with self._guard:
                    self._warming.pop(entry.id, None)
        return self._models[entry.id]

    def _torch_threads(self) -> None:
        """torch's threads, once: `live_threads`, or half the cores (the other half serve the requests)."""
        if not self._threads_set:
            import torch

            torch.set_num_threads(self.settings.live_threads or max(1, (os.cpu_count() or 2) // 2))
            self._threads_set = True

    def warm_up(self, model_ids, methods=()) -> None:
        """Load these models one after the other in a thread of their own, then warm up placing
        into the layouts of `methods`; requests for them are answered 503 until each is ready. A
        model that cannot be loaded is logged and left for a request to try again (its weights
        may appear)."""
        ids = [i for i in dict.fromkeys(model_ids) if i in self.catalog and i not in self._models]
        with self._guard:
            for model_id in ids:
                self._warming.setdefault(model_id, time.monotonic())
        for model_id in ids:
            self._warmer.submit(self._warm, model_id)
        for method in methods:
            self.warm_placement(method)

    def _warm(self, model_id: str) -> None:
        t0 = time.monotonic()
        try:
            self._loaded(self.catalog[model_id])
            log.info("live model %s loaded in %.1f s", model_id, time.monotonic() - t0)
        except QkatlasError:
            pass  # logged by public_load_error, with the paths; a request tries again

    def warm_placement(self, method: str) -> None:
        """Warm up placing points into `method`'s layouts in the warm-up thread, once per process;
        nothing for methods whose first placement is as fast as the next."""
        key = placement_key(method)
        with self._guard:
            if not REDUCERS[method].compiles or method in self._placing or key in self._warming:
                return
            self._warming[key] = time.monotonic()
        self._warmer.submit(self._warm_placement, method, key)

    def _warm_placement(self, method: str, key: str) -> None:
        t0 = time.monotonic()
        try:
            REDUCERS[method].warm_up()
            log.info("%s warmed up in %.1f s", key, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - the request's own placement will say what fails
            log.warning("%s did not warm up: %s", key, e)
        finally:
            with self._guard:
                self._placing.add(method)
                self._warming.pop(key, None)

    def warming(self) -> list[str]:
        """The models being loaded now or waiting for the warm-up to load them."""
        with self._guard:
            return sorted(self._warming)

    def check_warm(self, model_id: str, method: str | None = None) -> None:
        """WarmingUp (503, Retry-After) while `model_id` loads, or while placing into `method`'s
        layouts warms up (started now if it never was): a request never waits behind a load or
        a compilation it did not ask for."""
        if method is not None:
            self.warm_placement(method)
        for key in (model_id, None if method is None else placement_key(method)):
            since = self._warming.get(key)
            if since is not None:
                what = f"model {model_id!r}" if key == model_id else key
                raise WarmingUp(f"{what} is warming up ({'loading' if key == model_id else 'compiling'} for "
                                f"{time.monotonic() - since:.0f} s); retry in {WARMING_RETRY_S} s", WARMING_RETRY_S)

    def close(self) -> None:
        self._warmer.shutdown(wait=False, cancel_futures=True)

    def text(self, model_id: str, text: str) -> LiveCapture:
        from ..corpus import TextItem

        entry = self.entry(model_id)
        with self._lock(entry.id):
            loaded = self._loaded(entry)
            n = len(loaded.tokenizer(text, add_special_tokens=True)["input_ids"])
            limit = min(self.settings.max_text_tokens, loaded.max_length)
            if n > limit:
                raise TooLarge(f"text has {n} tokens; the limit is {limit} tokens "
                               f"(max_text_tokens={self.settings.max_text_tokens}, model maximum {loaded.max_length})")
            return self._capture(loaded, TextItem(0, text, "input"))

    def image(self, model_id: str, image) -> LiveCapture:
        """`image`: a PIL RGB image (live_input.read_image)."""
        from ..corpus import ImageItem

        entry = self.entry(model_id)
        with self._lock(entry.id):
            return self._capture(self._loaded(entry), ImageItem(0, image, "upload"))

    @staticmethod
    def _capture(loaded, item) -> LiveCapture:
        from ..capture.inputs import prepare
        from ..capture.run import capture

        prepared = prepare(loaded, [item])
        captured = capture(loaded, prepared, batch_size=1, dtype=np.float32)
        rows = prepared.token_rows
        tokens = [{"text": t, "position": p, "special": s, "row": r, "col": c}
                  for t, p, s, r, c in zip(rows["text"], rows["position"], rows["special"], rows["row"], rows["col"])]
        return LiveCapture(tokens, captured.q, captured.k, captured.scaling, loaded.causal)
