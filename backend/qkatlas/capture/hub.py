"""Where weights come from: a folder named by the catalog, the Hugging Face cache, or the hub.

Whether the hub is there is decided once per process, before any library is asked: when it is
off (QKATLAS_OFFLINE, HF_HUB_OFFLINE, or no answer within a few seconds) loads read the cache
only, so a missing model is a clear ModelUnavailable at once instead of minutes of retries.
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..catalog import ModelEntry, first_existing, local_candidates
from ..errors import ModelUnavailable
from ..settings import Settings

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = ("1", "on", "yes", "true")


def offline_reason(settings: Settings) -> str | None:
    """Why the hub must not be asked, e.g. 'QKATLAS_OFFLINE is set'; None when it answers."""
    if settings.offline:
        return "QKATLAS_OFFLINE is set"
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT)
    if not hub_answers(endpoint):
        return f"{endpoint} cannot be reached"
    return None


@functools.lru_cache(maxsize=None)
def hub_answers(endpoint: str) -> bool:
    """True when `endpoint` answers one HTTP request within PROBE_TIMEOUT_S; asked once per process.

    The request runs in a daemon thread because a socket timeout does not bound a DNS lookup.
    """
    answered: list[bool] = []
    probe = threading.Thread(target=lambda: answered.append(_answers(endpoint)), daemon=True)
    probe.start()
    probe.join(PROBE_TIMEOUT_S + 0.5)
    return bool(answered and answered[0])


def _answers(endpoint: str) -> bool:
    # Any HTTP status is an answer. urllib honours HTTPS_PROXY, so a proxy that refuses the hub
    # counts as no hub, as it should.
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=PROBE_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):  # no DNS, refused, timed out, tunnel refused, malformed endpoint
        return False


@dataclass(frozen=True)
class Source:
    """Where to load from: `name` is a local folder or a hub id; `offline` says why the hub is not asked."""

    name: str
    local: bool
    offline: str | None = None

    @property
    def kwargs(self) -> dict:
        """Keywords for `from_pretrained`: never let the library reach for a hub that is off."""
        return {"local_files_only": self.local or self.offline is not None}


def resolve(settings: Settings, names: tuple[str, ...], hub_id: str) -> Source:
    """The first local folder among `names`, else `hub_id` (from the cache, or the hub when it answers)."""
    folder = first_existing(local_candidates(settings, names))
    if folder is not None:
        return Source(str(folder), local=True)
    return Source(hub_id, local=False, offline=offline_reason(settings))


def cached_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of `filenames` of hub repo `repo_id` already in the Hugging Face cache, without asking the hub."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        path = try_to_load_from_cache(repo_id, name)
        if isinstance(path, str):  # None: unknown; a sentinel object: known to be absent upstream
            return Path(path)
    return None


def model_file(entry: ModelEntry, settings: Settings, source: Source, filename: str) -> Path:
    """`filename` (e.g. a GGUF file) from the model's local folder, else the Hugging Face cache, else the hub."""
    if source.local:
        path = Path(source.name) / filename
        if not path.is_file():
            raise unavailable(entry, settings, "weights", entry.local, source, FileNotFoundError(f"no file {filename}"))
        return path
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source.name, filename, **source.kwargs))
    except (OSError, ValueError) as e:  # huggingface_hub's errors are OSErrors
        raise unavailable(entry, settings, "weights", entry.local, source, e) from None


def revision(source: Source, filename: str) -> str:
    """The commit a hub model was loaded at (its cache snapshot folder's name); '' for a local folder."""
    path = None if source.local else cached_file(source.name, (filename,))
    return path.parent.name if path is not None and path.parent.parent.name == "snapshots" else ""


def unavailable(entry: ModelEntry, settings: Settings, what: str, names: tuple[str, ...], source: Source,
                err: Exception | None = None) -> ModelUnavailable:
    """The error for a model no source could provide: it names the model and how to provide it."""
    if source.local:
        detail = next(iter(str(err).strip().splitlines()), "")
        return ModelUnavailable(f"model {entry.id!r}: the {what} in folder {source.name} could not be loaded "
                                f"({type(err).__name__}: {detail})")
    why = f"the hub is off ({source.offline})" if source.offline else \
        f"the hub did not provide it ({type(err).__name__})"
    names = names or (source.name,)
    where = local_candidates(settings, names)[0]
    download = f"{source.name} {entry.gguf_file}" if entry.gguf_file else source.name
    return ModelUnavailable(
        f"model {entry.id!r}: {what} {source.name!r} not found in a local folder or the Hugging Face cache, and {why}. "
        f"Download it where a hub is reachable (`hf download {download}`), or put the model folder at {where} "
        f"(or set QKATLAS_SHARED_MODELS to a folder holding {names[0]!r})"
    )
