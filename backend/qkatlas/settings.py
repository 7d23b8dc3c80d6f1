"""One Settings object for the whole app, read from QKATLAS_* environment variables.

CLI flags override fields with `dataclasses.replace`; defaults work on a laptop with no GPU
and no internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import InvalidInput
from .resources import CHECKOUT, catalog_dir, is_checkout

PROJECT_ROOT = CHECKOUT  # kept for callers being migrated to resources.py

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _default_shared_models() -> Path:
    # Beside the checkout (the layout of the development machines), else beside the working dir.
    return (CHECKOUT.parent if is_checkout() else Path("..")) / "shared" / "models"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("atlases")
    catalog_dir: Path = field(default_factory=catalog_dir)
    shared_models: Path = field(default_factory=_default_shared_models)
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    workers: int = 0  # 0: one per core
    scheduler: str = ""  # a Dask scheduler (tcp://HOST:8786) for the reduce stage; empty: this machine
    seed: int = 0
    joint: str = "qkatlas"  # joint.JOINT_METHODS: how each head's joint space is chosen (qkatlas, attentionviz, raw)
    batch_size: int = 32
    max_text_chars: int = 2000
    max_text_tokens: int = 256
    max_upload_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    offline: bool = False
    demo_models: str = ""  # comma-separated; empty: real-weights defaults when local, else tiny models
    demo_methods: str = "pca,umap"
    # Safe for a LAN (api/auth.py, api/hosts.py, api/headers.py, api/limits.py)
    token: str = ""  # bearer token asked of live inference; empty: none asked
    allowed_hosts: str = ""  # comma-separated Host names answered besides localhost, IP literals and --host; *: any
    docs: bool = True  # /docs, /openapi.json
    max_json_bytes: int = 64 * 1024  # any request body but an upload
    # Live inference admission (api/admission.py, api/inference.py)
    live_concurrency: int = 1  # forward passes at once, all models together
    live_queue: int = 8  # requests waiting per model beyond the one running; more: 429
    live_timeout: int = 30  # seconds a request may wait for its turn; longer: 429
    live_threads: int = 0  # torch threads for live inference; 0: half the cores
    live_warmup: bool = True  # load the models of the atlases present when the server starts

    def __post_init__(self):
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if not low <= value <= high:
                bound = f"at least {low}" if high == _NO_LIMIT else f"between {low} and {high}"
                raise InvalidInput(f"{name} must be {bound}, got {value} ({_flag(name)} / {env_name(name)})")
        for name, choices in _CHOICES:
            if getattr(self, name) not in choices:
                raise InvalidInput(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r} "
                                   f"({_flag(name)} / {env_name(name)})")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """Every setting as QKATLAS_* variables: how a child process (the demo builder) gets the
        settings given on the command line."""
        return {env_name(f.name): _format(getattr(self, f.name)) for f in fields(self)}


_NO_LIMIT = 1 << 62
_RANGES = (("port", 1, 65535), ("workers", 0, _NO_LIMIT), ("seed", 0, 2**32 - 1), ("batch_size", 1, _NO_LIMIT),
           ("max_text_chars", 1, _NO_LIMIT), ("max_text_tokens", 1, _NO_LIMIT), ("max_upload_bytes", 1, _NO_LIMIT),
           ("max_image_pixels", 1, _NO_LIMIT), ("max_json_bytes", 1024, _NO_LIMIT), ("live_concurrency", 1, 64),
           ("live_queue", 0, 10_000), ("live_timeout", 1, 3600), ("live_threads", 0, 1024))


_CHOICES = (("joint", ("qkatlas", "attentionviz", "raw")),)  # joint.JOINT_METHODS, without importing numpy here


def env_name(field_name: str) -> str:
    return f"QKATLAS_{field_name.upper()}"


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _parse(name: str, type_name: str, raw: str):
    if type_name == "Path":
        return Path(raw)
    if type_name == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise InvalidInput(f"{env_name(name)}={raw!r} is not a whole number") from None
    if type_name == "bool":
        word = raw.strip().lower()
        if word not in TRUE + FALSE:
            raise InvalidInput(f"{env_name(name)}={raw!r} is not a yes/no value; use one of "
                               f"{', '.join(TRUE)} or {', '.join(f for f in FALSE if f)}")
        return word in TRUE
    return raw


def _format(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
