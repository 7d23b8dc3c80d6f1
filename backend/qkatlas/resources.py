"""Where the files that ship with qkatlas are: the front end and the model catalog.

An installed copy carries them as data-only subpackages (`qkatlas.web`, `qkatlas.catalog_files`,
mapped from frontend/ and models/ in pyproject.toml); an editable install from a checkout
does not map those, and reads them from the checkout itself.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

# The repository root when running from a checkout (backend/qkatlas/resources.py -> ../../).
CHECKOUT = Path(__file__).resolve().parents[2]


def _shipped(package: str, checkout_folder: str) -> Path:
    # Data-only folders are namespace packages: their one search location is the folder.
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return CHECKOUT / checkout_folder
    return Path(next(iter(spec.submodule_search_locations)))


def frontend_dir() -> Path:
    return _shipped("qkatlas.web", "frontend")


def catalog_dir() -> Path:
    return _shipped("qkatlas.catalog_files", "models")


def is_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "backend" / "qkatlas").is_dir()
