"""Catalog entry -> model ready for capture.

Loading order: a local folder named by the entry -> the Hugging Face cache -> the hub.
Random-init entries build the real architecture from a small config with a fixed seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..catalog import ModelEntry, first_existing, local_candidates
from ..errors import InvalidInput, ModelUnavailable
from ..settings import Settings


@dataclass
class ImageSpec:
    """How pixels reach the model: input size, patch size, normalisation, tokens before patches."""

    size: int
    patch: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    prefix_tokens: int = 1  # CLS (+ register tokens)

    @property
    def grid(self) -> int:
        return self.size // self.patch


@dataclass
class LoadedModel:
    entry: ModelEntry
    model: torch.nn.Module
    device: torch.device
    layers: int
    heads: int
    head_dim: int
    causal: bool
    tokenizer: object | None = None
    image: ImageSpec | None = None
    max_length: int = 512
    source: str = ""  # where the weights came from: a folder, a hub id, or "random init"
    revision: str = ""


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda") and not requested.startswith("cuda:"):
        raise InvalidInput(f"unknown device {requested!r}; use auto, cpu or cuda")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInput(f"device {requested!r} requested but CUDA is not available on this machine")
    return torch.device(requested)


def load_model(entry: ModelEntry, settings: Settings, device: str | None = None) -> LoadedModel:
    dev = pick_device(device or settings.device)
    if entry.loader == "random":
        loaded = _load_random(entry, settings, dev)
    elif entry.loader == "timm":
        loaded = _load_timm(entry, settings, dev)
    else:
        loaded = _load_transformers(entry, settings, dev)
    loaded.model.eval().to(dev)
    if dev.type == "cuda":
        loaded.model.half()
    return loaded


def _unavailable(entry: ModelEntry, settings: Settings, what: str, names: tuple[str, ...], source: str, err) -> ModelUnavailable:
    where = local_candidates(settings, names)[:1]
    hint = f"put the model folder at {where[0]} (or set QKATLAS_SHARED_MODELS to a folder holding {names[0]!r})" if where else ""
    return ModelUnavailable(
        f"model {entry.id!r}: {what} {source!r} is not in a local folder or the Hugging Face cache and the hub "
        f"cannot be reached ({type(err).__name__}). Download it where a hub is reachable "
        f"(`hf download {source}`), {hint}"
    )


def _pretrained_source(entry: ModelEntry, settings: Settings, names: tuple[str, ...], hub_id: str) -> tuple[str, bool]:
    folder = first_existing(local_candidates(settings, names))
    return (str(folder), True) if folder else (hub_id, False)


def _hub_kwargs(settings: Settings, local: bool) -> dict:
    return {"local_files_only": local or settings.offline or os.environ.get("HF_HUB_OFFLINE") == "1"}


def _load_tokenizer(entry: ModelEntry, settings: Settings, names: tuple[str, ...], hub_id: str):
    from transformers import AutoTokenizer

    src, local = _pretrained_source(entry, settings, names, hub_id)
    try:
        tok = AutoTokenizer.from_pretrained(src, **_hub_kwargs(settings, local))
    except (OSError, ValueError) as e:
        raise _unavailable(entry, settings, "tokenizer", names or (hub_id,), hub_id, e) from None
    if tok.pad_token is None:  # GPT-2 has none; padding is removed before anything is stored
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def _text_limits(model, tokenizer) -> int:
    cfg = model.config
    positions = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 512)
    return int(min(positions, 512, getattr(tokenizer, "model_max_length", 512) or 512))


def _load_transformers(entry: ModelEntry, settings: Settings, dev: torch.device) -> LoadedModel:
    from transformers import AutoConfig, AutoModel

    src, local = _pretrained_source(entry, settings, entry.local, entry.source)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    try:
        config = AutoConfig.from_pretrained(src, **_hub_kwargs(settings, local))
        model = AutoModel.from_pretrained(src, dtype=dtype, attn_implementation="sdpa", **_hub_kwargs(settings, local))
    except (OSError, ValueError) as e:
        raise _unavailable(entry, settings, "weights", entry.local or (entry.source,), entry.source, e) from None
    revision = getattr(config, "_commit_hash", None) or ""
    heads = config.num_attention_heads
    layers = config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    loaded = LoadedModel(entry, model, dev, layers, heads, head_dim, causal=entry.family == "gpt2", source=src, revision=revision)
    if entry.modality == "text":
        loaded.tokenizer = _load_tokenizer(entry, settings, entry.local, entry.source)
        loaded.max_length = _text_limits(model, loaded.tokenizer)
    else:
        loaded.image = _hf_image_spec(src, config, settings, local)
    return loaded


def _hf_image_spec(src: str, config, settings: Settings, local: bool) -> ImageSpec:
    from transformers import AutoImageProcessor

    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    size = config.image_size
    try:
        proc = AutoImageProcessor.from_pretrained(src, **_hub_kwargs(settings, local))
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        # The processor's crop is the size the model is meant to see (DINOv2: 224, though its
        # position embeddings were trained at 518 and are interpolated).
        crop = getattr(proc, "crop_size", None) or {}
        size = int(crop.get("height", size))
    except (OSError, ValueError):
        pass  # a model without a processor config: ViT's default normalisation
    registers = getattr(config, "num_register_tokens", 0) or 0
    return ImageSpec(size=size, patch=config.patch_size, mean=mean, std=std, prefix_tokens=1 + registers)


def _load_random(entry: ModelEntry, settings: Settings, dev: torch.device) -> LoadedModel:
    torch.manual_seed(0)
    cfg = dict(entry.config)
    arch = entry.source
    if arch == "timm-vit":
        from timm.models.vision_transformer import VisionTransformer

        model = VisionTransformer(num_classes=0, **cfg)
        heads, layers = cfg["num_heads"], cfg["depth"]
        spec = ImageSpec(size=cfg["img_size"], patch=cfg["patch_size"], mean=(0.5,) * 3, std=(0.5,) * 3)
        return LoadedModel(entry, model, dev, layers, heads, cfg["embed_dim"] // heads, False, image=spec, source="random init")
    if arch == "vit":
        from transformers import ViTConfig, ViTModel

        config = ViTConfig(attn_implementation="sdpa", **cfg)
        model = ViTModel(config, add_pooling_layer=False)
        spec = ImageSpec(size=config.image_size, patch=config.patch_size, mean=(0.5,) * 3, std=(0.5,) * 3)
        return LoadedModel(entry, model, dev, config.num_hidden_layers, config.num_attention_heads,
                           config.hidden_size // config.num_attention_heads, False, image=spec, source="random init")
    tokenizer = _load_tokenizer(entry, settings, entry.tokenizer_local, entry.tokenizer)
    if arch == "gpt2":
        from transformers import GPT2Config, GPT2Model

        config = GPT2Config(vocab_size=len(tokenizer), attn_implementation="sdpa", **cfg)
        model, layers, heads, hidden = GPT2Model(config), config.n_layer, config.n_head, config.n_embd
    elif arch == "bert":
        from transformers import BertConfig, BertModel

        config = BertConfig(vocab_size=len(tokenizer), attn_implementation="sdpa", **cfg)
        model = BertModel(config, add_pooling_layer=False)
        layers, heads, hidden = config.num_hidden_layers, config.num_attention_heads, config.hidden_size
    else:
        raise ValueError(f"catalog entry {entry.id!r}: unknown random architecture {arch!r}")
    loaded = LoadedModel(entry, model, dev, layers, heads, hidden // heads, causal=arch == "gpt2",
                         tokenizer=tokenizer, source="random init")
    loaded.max_length = _text_limits(model, tokenizer)
    return loaded


def _load_timm(entry: ModelEntry, settings: Settings, dev: torch.device) -> LoadedModel:
    import timm

    folder = first_existing(local_candidates(settings, entry.local))
    kwargs = {"num_classes": 0}
    if folder is not None:
        weights = next((p for p in (folder / "model.safetensors", folder / "pytorch_model.bin") if p.exists()), None)
        if weights is None:
            raise ModelUnavailable(f"model {entry.id!r}: folder {folder} has no model.safetensors or pytorch_model.bin")
        kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
    try:
        model = timm.create_model(entry.source, pretrained=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as e:
        raise _unavailable(entry, settings, "weights", entry.local or (entry.source,), f"timm/{entry.source}", e) from None
    blocks = model.blocks
    attn = blocks[0].attn
    cfg = model.pretrained_cfg
    size = cfg.get("input_size", (3, 224, 224))[-1]
    patch = model.patch_embed.patch_size[0]
    spec = ImageSpec(size=size, patch=patch, mean=tuple(cfg.get("mean", (0.5,) * 3)), std=tuple(cfg.get("std", (0.5,) * 3)),
                     prefix_tokens=getattr(model, "num_prefix_tokens", 1))
    return LoadedModel(entry, model, dev, len(blocks), attn.num_heads, attn.head_dim, False, image=spec,
                       source=str(folder) if folder else entry.source)

