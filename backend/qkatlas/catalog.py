"""The model catalog: one small TOML file per model in `models/`, read at start-up; and the
entries of models a user names by path (a Hugging Face model folder, or a GGUF file) instead.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput, UnknownModel
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
    gguf_file: str = ""  # a GGUF file in the model's folder or hub repo: de-quantised on load, then cached
    path: str = ""  # a model named by its folder or .gguf file, not by a catalog id: that absolute path

    @property
    def spec(self) -> str:
        """What `get_model` takes to give this entry back: the catalog id, or the path."""
        return self.path or self.id

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
            gguf_file=raw.get("gguf_file", ""),
        )
        if entry.family not in FAMILIES or entry.loader not in LOADERS:
            raise ValueError(f"{path}: family must be one of {FAMILIES}, loader one of {LOADERS}")
        if not (entry.causal is None or isinstance(entry.causal, bool)):
            raise ValueError(f"{path}: causal must be true or false (or left out to ask the model)")
        entries[entry.id] = entry
    return entries


def get_model(settings: Settings, spec: str, gguf_file: str | None = None) -> ModelEntry:
    """The model a user named: a catalog id, a Hugging Face model folder, a folder with the GGUF
    file `gguf_file` in it, or a .gguf file. A model named by path gets an entry of its own, whose
    id (and so its atlas's name) comes from the folder or file name."""
    catalog = load_catalog(settings)
    if spec in catalog and not gguf_file:
        return catalog[spec]
    path = Path(spec).expanduser()
    if path.exists():
        return _path_entry(path.resolve(), gguf_file, catalog)
    if spec in catalog:
        raise InvalidInput(f"a GGUF file name (--gguf-file) goes with a model folder, and {spec!r} is a catalog model")
    raise UnknownModel(f"unknown model {spec!r}: no model folder or .gguf file by that name, "
                       f"and the catalog has: {', '.join(sorted(catalog))}")


def _path_entry(path: Path, gguf_file: str | None, catalog: dict[str, ModelEntry]) -> ModelEntry:
    """The entry of a model named by an existing folder or file (absolute)."""
    if path.is_file():
        if gguf_file:
            raise InvalidInput(f"a GGUF file name (--gguf-file) goes with a model folder, and {path} is a file")
        if path.suffix.lower() != ".gguf":
            raise InvalidInput(f"{path} is neither a model folder nor a .gguf file")
        path, gguf_file = path.parent, path.name
    if gguf_file:
        file = path / gguf_file
        if not file.is_file():
            raise InvalidInput(f"no GGUF file {gguf_file!r} in {path}; {_ggufs_in(path) or 'it holds no .gguf file'}")
        return ModelEntry(id=_path_id(file.stem, catalog), label=f"{file.name} (GGUF, de-quantised)", family="gguf",
                          modality="text", loader="transformers", source=str(file), local=(str(path),),
                          gguf_file=file.name, notes=f"Your GGUF file {file}, de-quantised to float32 on load.",
                          path=str(file))
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        held = _ggufs_in(path)
        hint = f"; to load a GGUF file in it, name it with --gguf-file ({held})" if held else ""
        raise InvalidInput(f"{path} is not a Hugging Face model folder (it has no config.json){hint}") from None
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{path / 'config.json'} cannot be read ({type(e).__name__}: {e})") from None
    image = "image_size" in config and "patch_size" in config  # ViT, DINOv2, DeiT, BEiT
    return ModelEntry(id=_path_id(path.name, catalog), label=path.name, family=str(config.get("model_type", "")),
                      modality="image" if image else "text", loader="transformers", source=str(path),
                      local=(str(path),), default_corpus="images" if image else "default",
                      notes=f"Your model folder {path}.", path=str(path))


def _path_id(name: str, catalog: dict[str, ModelEntry]) -> str:
    """A model id from a folder or file name, never one of the catalog's (their atlases would mix)."""
    model_id = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "model"
    return f"{model_id}-local" if model_id in catalog else model_id


def _ggufs_in(folder: Path) -> str:
    """'it holds a.gguf, b.gguf', or '' when the folder holds none."""
    names = sorted(p.name for p in folder.glob("*.gguf"))
    return f"it holds {', '.join(names)}" if names else ""


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
