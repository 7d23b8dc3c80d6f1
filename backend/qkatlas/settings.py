"""One Settings object for the whole app, read from QKATLAS_* environment variables.

CLI flags override fields with `dataclasses.replace`; defaults work on a laptop with no GPU
and no internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

# Repository root when running from a checkout (backend/qkatlas/settings.py -> ../../).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _default_shared_models() -> Path:
    return PROJECT_ROOT.parent / "shared" / "models"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("atlases")
    catalog_dir: Path = PROJECT_ROOT / "models"
    shared_models: Path = field(default_factory=_default_shared_models)
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    workers: int = 0  # 0: one per core
    seed: int = 0
    batch_size: int = 32
    max_text_chars: int = 2000
    max_text_tokens: int = 256
    max_upload_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096
    offline: bool = False
    demo_models: str = ""  # comma-separated; empty: real-weights defaults when local, else tiny models
    demo_methods: str = "pca,umap"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f"QKATLAS_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parse(type_name: str, raw: str):
    if type_name == "Path":
        return Path(raw)
    if type_name == "int":
        return int(raw)
    if type_name == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
