"""A GGUF file -> an ordinary Hugging Face model folder, converted once and cached.

transformers reads GGUF itself (the `gguf` package parses it, `accelerate` places the weights),
but it parses the metadata and de-quantises every tensor on every load: half a minute for a
135M model on two cores. The first load here writes what it produced (config, tokenizer and
float32 weights as safetensors) to a folder of the qkatlas cache named after the file's name,
size and modification time and the transformers version; every later load reads that folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path

import torch

from ..errors import StorageError
from ..progress import Reporter, Silent

CACHE_ENV = "QKATLAS_CACHE_DIR"
STAGE = "converting GGUF"
STEPS = 4  # metadata read, weights de-quantised, tokenizer converted, folder written


def cache_root() -> Path:
    """QKATLAS_CACHE_DIR, else $XDG_CACHE_HOME/qkatlas, else ~/.cache/qkatlas."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qkatlas"


def converted_folder(gguf: Path) -> Path:
    """Where the conversion of `gguf` lives, whether or not it exists yet.

    A changed file (size or modification time) or another transformers (its GGUF mapping may
    change) gets a new folder; hashing the contents would cost seconds per load for large files.
    """
    import transformers

    stat = Path(gguf).stat()
    key = f"{Path(gguf).name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{transformers.__version__}"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(gguf).stem).strip("-")
    return cache_root() / "gguf" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def convert(gguf: Path, reporter: Reporter | None = None) -> Path:
    """The Hugging Face folder of `gguf` (config.json, tokenizer files, model.safetensors in float32).

    Made on first use in a temporary folder renamed into place when complete, so a folder that
    exists is whole, and two processes converting at once both end with the same folder.
    A file transformers cannot read (damaged, or an architecture it lacks) is a ValueError.
    """
    gguf = Path(gguf)
    folder = converted_folder(gguf)
    if folder.is_dir():
        return folder
    reporter = reporter or Silent()
    reporter.message(f"de-quantising {gguf.name} once; later loads read {folder}")
    reporter.stage(STAGE, STEPS)
    try:
        model, tokenizer = _read(gguf, reporter)
    except (struct.error, KeyError, IndexError) as e:  # a damaged file, as the gguf parser meets it
        raise ValueError(f"{gguf.name} is not a readable GGUF file ({type(e).__name__}: {e})") from None
    _store(model, tokenizer, folder)
    reporter.advance()
    return folder


def _read(gguf: Path, reporter: Reporter):
    """(model with float32 weights, tokenizer) of `gguf`, three steps of the stage."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    where = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    config = AutoConfig.from_pretrained(**where)  # given to the model below, so it is parsed once
    reporter.advance()
    model = AutoModel.from_pretrained(**where, config=config, dtype=torch.float32)
    reporter.advance()
    tokenizer = AutoTokenizer.from_pretrained(**where)
    reporter.advance()
    return model, tokenizer


def _store(model, tokenizer, folder: Path) -> None:
    from safetensors.torch import save_model

    # The weights are plain float32 now: a config still naming GGUF would send later loads back to it.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for path in (tmp, *tmp.iterdir()):  # mkdtemp makes it private; a shared cache serves other users too
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():  # not a race lost to another process: a real failure
                raise
    except OSError as e:
        raise StorageError(f"cannot write the converted GGUF model to {folder} ({type(e).__name__}: {e}); "
                           f"free space there or point {CACHE_ENV} at another folder") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
