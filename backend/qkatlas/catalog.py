"""The model catalog: one small TOML file per model in `models/`, read at start-up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnknownModel
from .settings import Settings

FAMILIES = ("gpt2", "bert", "llama", "vit", "dinov2")
LOADERS = ("transformers", "timm", "random")


@dataclass(frozen=True)
class ModelEntry:
    id: str
    label: str
    family: str
    modality: str  # "text" or "image"
    loader: str  # "transformers", "timm" or "random"
    source: str  # hub id (transformers/timm) or architecture name (random)
    local: tuple[str, ...] = ()  # folders tried before the cache and the hub
    tokenizer: str = ""  # hub id of the tokenizer (random text models)
    tokenizer_local: tuple[str, ...] = ()
    default_corpus: str = "default"
    random: bool = False
    notes: str = ""
    config: dict = field(default_factory=dict)
    # None: the model says whether its attention is causal; True/False overrides what it says.
    causal: bool | None = None

    @property
    def display_label(self) -> str:
        """The label shown in the UI; random-init models always say so."""
        if self.random and "random" not in self.label.lower():
            return f"{self.label} (random init)"
        return self.label

    def summary(self) -> dict:
        return {
            "id": self.id,
            "label": self.display_label,
            "family": self.family,
            "modality": self.modality,
            "loader": self.loader,
            "source": self.source,
            "random": self.random,
            "notes": self.notes,
        }


def load_catalog(settings: Settings) -> dict[str, ModelEntry]:
    entries = {}
    for path in sorted(Path(settings.catalog_dir).glob("*.toml")):
        with path.open("rb") as f:
            raw = tomllib.load(f)
        entry = ModelEntry(
            id=raw["id"],
            label=raw["label"],
            family=raw["family"],
            modality=raw["modality"],
            loader=raw["loader"],
            source=raw["source"],
            local=tuple(raw.get("local", ())),
            tokenizer=raw.get("tokenizer", ""),
            tokenizer_local=tuple(raw.get("tokenizer_local", ())),
            default_corpus=raw.get("default_corpus", "default"),
            random=bool(raw.get("random", False)),
            notes=raw.get("notes", ""),
            config=raw.get("config", {}),
            causal=raw.get("causal"),
        )
        if entry.family not in FAMILIES or entry.loader not in LOADERS:
            raise ValueError(f"{path}: family must be one of {FAMILIES}, loader one of {LOADERS}")
        if not (entry.causal is None or isinstance(entry.causal, bool)):
            raise ValueError(f"{path}: causal must be true or false (or left out to ask the model)")
        entries[entry.id] = entry
    return entries


def get_model(settings: Settings, model_id: str) -> ModelEntry:
    catalog = load_catalog(settings)
    if model_id not in catalog:
        raise UnknownModel(f"unknown model {model_id!r}; the catalog has: {', '.join(sorted(catalog))}")
    return catalog[model_id]


def local_candidates(settings: Settings, names: tuple[str, ...]) -> list[Path]:
    """Folders a catalog entry names, resolved against the shared models dir and the project root."""
    out = []
    for name in names:
        p = Path(name).expanduser()
        if p.is_absolute():
            out.append(p)
        else:
            out.append(Path(settings.shared_models) / p)
            out.append(Path(settings.catalog_dir).parent / p)
    return out


def first_existing(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_dir()), None)
