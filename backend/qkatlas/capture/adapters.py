"""One adapter per kind of model: how capture loads it, batches its inputs, runs it, traces its
attention, and asks it for the eager attention that verify compares against.

The rest of capture never asks what kind of model it holds; it asks `loaded.adapter`. A new
kind of model is one new Adapter subclass here and one line in `adapter_for`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..catalog import ModelEntry
from ..progress import Reporter
from ..settings import Settings
from . import gguf, hub
from .inputs import Prepared
from .model import ImageSpec, LoadedModel
from .trace import Sink, attention_calls, attn_implementation, forward_hooks, layer_of

RANDOM_SOURCE = "random init"
SEED = 0  # random-init models: the same weights in every process
# torch's CPU generator is one per process: two threads initialising at once (the server's warm-up
# beside a build, several apps in one test process) would interleave their draws.
_INIT_LOCK = threading.Lock()
MAX_TEXT_TOKENS = 512
TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
DEFAULT_NORM = (0.5, 0.5, 0.5)


class Adapter(ABC):
    """The steps that differ between kinds of model. Stateless: one instance serves every model of its kind."""

    name: str

    @abstractmethod
    def load(self, entry: ModelEntry, settings: Settings, device: torch.device, reporter: Reporter) -> LoadedModel:
        """The entry's model (weights from a local folder, the cache or the hub; or random init), on the CPU.

        `reporter` hears about slow steps of loading (de-quantising a GGUF file).
        """

    @abstractmethod
    def inputs(self, loaded: LoadedModel, prepared: Prepared, idx: np.ndarray) -> tuple[dict, torch.Tensor]:
        """(keyword arguments of `forward`, valid: (batch, seq) bool) for the items `idx`, on the model's device."""

    @abstractmethod
    def forward(self, model: torch.nn.Module, inputs: dict) -> None:
        """One forward pass; only what a trace records is kept."""

    @abstractmethod
    def trace(self, model: torch.nn.Module, sink: Sink) -> AbstractContextManager[None]:
        """While active, each attention layer reports sink(layer, q, k, scaling), q and k (batch, heads, seq, head_dim)."""

    @abstractmethod
    def reference_attention(self, model: torch.nn.Module, inputs: dict) -> list[torch.Tensor]:
        """The model's own eager attention probabilities for one batch, per layer: (batch, heads, seq, seq)."""

    @abstractmethod
    def is_causal(self, model: torch.nn.Module) -> bool:
        """Whether each token attends only to itself and earlier tokens, as the model itself says."""

    def causal(self, entry: ModelEntry, model: torch.nn.Module) -> bool:
        """The catalog's `causal` when it sets one (a model that misreports itself), else the model's word."""
        return entry.causal if entry.causal is not None else self.is_causal(model)


# ---- Hugging Face transformers ---------------------------------------------------------------


class HuggingFace(Adapter, ABC):
    """Any transformers model whose attention goes through transformers' AttentionInterface."""

    def forward(self, model, inputs):
        model(**inputs)

    def trace(self, model, sink):
        return attention_calls(model, attention_modules(model), sink)

    def reference_attention(self, model, inputs):
        with attn_implementation(model, "eager"):
            return list(model(**inputs, output_attentions=True).attentions)

    def is_causal(self, model):
        config = model.config
        architectures = getattr(config, "architectures", None) or []
        return (any(m.is_causal for m in attention_modules(model))
                or bool(getattr(config, "is_decoder", False))
                or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures))

    def _loaded(self, entry: ModelEntry, model, device, source: hub.Source | None, **fields) -> LoadedModel:
        """`source` None: random init; else where the weights came from (a GGUF file's folder or hub repo)."""
        layers, heads, kv_heads, head_dim = _hf_shape(model.config)
        if source is None:
            where, revision = RANDOM_SOURCE, ""
        else:
            where = f"{source.name}/{entry.gguf_file}" if entry.gguf_file else source.name
            revision = hub.revision(source, entry.gguf_file or "config.json")
        return LoadedModel(entry, model, device, layers, heads, head_dim, self.causal(entry, model),
                           source=where, revision=revision, adapter=self, kv_heads=kv_heads, **fields)


class HFText(HuggingFace):
    """Text transformers (GPT-2, BERT, Llama, ...): token ids with an attention mask, padded on the right."""

    name = "hf-text"

    def load(self, entry, settings, device, reporter):
        if entry.loader == "random":  # the tokenizer first: its vocabulary sizes the embeddings
            tokenizer = load_tokenizer(entry, settings, reporter)
            model, source = _random_hf(entry, vocab_size=len(tokenizer)), None
        else:
            model, source = _pretrained_hf(entry, settings, device, reporter)
            tokenizer = load_tokenizer(entry, settings, reporter)
        return self._loaded(entry, model, device, source, tokenizer=tokenizer,
                            max_length=_text_limit(model.config, tokenizer))

    def inputs(self, loaded, prepared, idx):
        seq = int(prepared.lengths[idx].max())
        ids = torch.full((len(idx), seq), loaded.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(idx), seq), dtype=torch.long)
        for row, i in enumerate(idx):
            toks = prepared.input_ids[i]
            ids[row, : len(toks)] = torch.tensor(toks)
            mask[row, : len(toks)] = 1
        dev = loaded.device
        return {"input_ids": ids.to(dev), "attention_mask": mask.to(dev)}, mask.bool().to(dev)


class HFVision(HuggingFace):
    """Vision transformers (ViT, DINOv2): pixel values, every patch valid."""

    name = "hf-vision"

    def load(self, entry, settings, device, reporter):
        if entry.loader == "random":
            model = _random_hf(entry)
            spec = ImageSpec(model.config.image_size, model.config.patch_size, DEFAULT_NORM, DEFAULT_NORM)
            return self._loaded(entry, model, device, None, image=spec)
        model, source = _pretrained_hf(entry, settings, device, reporter)
        return self._loaded(entry, model, device, source, image=_hf_image_spec(source, model.config))

    def inputs(self, loaded, prepared, idx):
        pixels, valid = _pixel_batch(loaded, prepared, idx)
        return {"pixel_values": pixels}, valid


def attention_modules(model: torch.nn.Module) -> dict[torch.nn.Module, int]:
    """The self-attention modules of a transformers model -> their layer.

    They are the modules transformers' attention functions receive, and they say so by
    carrying `is_causal`, which those functions read; cross-attention is left out.
    """
    found = {}
    for path, module in model.named_modules():
        layer = layer_of(path)
        cross = getattr(module, "is_cross_attention", False) or "Cross" in type(module).__name__
        if layer is not None and hasattr(module, "is_causal") and not cross:
            found[module] = layer
    return found


def _hf_shape(config) -> tuple[int, int, int, int]:
    """(layers, query heads, key/value heads, head dim) from a transformers config."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads  # grouped-query attention when fewer
    return config.num_hidden_layers, heads, kv_heads, getattr(config, "head_dim", None) or config.hidden_size // heads


@contextmanager
def _seeded() -> Iterator[None]:
    """Draws inside come from SEED, whatever other threads do; the caller's generator state is kept."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield


def _random_hf(entry: ModelEntry, **extra) -> torch.nn.Module:
    """The real architecture `entry.source` ('gpt2', 'llama', 'vit', ...) at the entry's small config, seeded."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(entry.source, **extra, **entry.config)
    with _seeded():
        return AutoModel.from_config(config, attn_implementation="sdpa")


def _pretrained_hf(entry: ModelEntry, settings: Settings, device: torch.device,
                   reporter: Reporter) -> tuple[torch.nn.Module, hub.Source]:
    """(model, where its weights came from)."""
    from transformers import AutoModel

    source, read = _pretrained_source(entry, settings, reporter)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        model = AutoModel.from_pretrained(read.name, dtype=dtype, attn_implementation="sdpa", **read.kwargs)
    except (OSError, ValueError) as e:
        raise hub.unavailable(entry, settings, "weights", entry.local, source, e) from None
    return model, source


def _pretrained_source(entry: ModelEntry, settings: Settings,
                       reporter: Reporter | None) -> tuple[hub.Source, hub.Source]:
    """(where the model comes from, the folder or hub id from_pretrained reads): the same, except
    for a GGUF file, which is read from its converted folder in the qkatlas cache (gguf.py)."""
    source = hub.resolve(settings, entry.local, entry.source)
    if not entry.gguf_file:
        return source, source
    path = hub.model_file(entry, settings, source, entry.gguf_file)
    try:
        return source, hub.Source(str(gguf.convert(path, reporter)), local=True)
    except (OSError, ValueError) as e:  # transformers cannot read this file (an architecture it lacks)
        raise hub.unavailable(entry, settings, "weights", entry.local, hub.Source(str(path.parent), local=True),
                              e) from None


def load_tokenizer(entry: ModelEntry, settings: Settings, reporter: Reporter | None = None):
    """The entry's tokenizer (its own `tokenizer` fields, else the model's), padding on the right."""
    from transformers import AutoTokenizer

    names = entry.tokenizer_local if entry.tokenizer else entry.local
    if entry.gguf_file:  # the tokenizer is inside the GGUF file
        source, read = _pretrained_source(entry, settings, reporter)
    else:
        source = read = hub.resolve(settings, names, entry.tokenizer or entry.source)
    try:
        tok = AutoTokenizer.from_pretrained(read.name, **read.kwargs)
    except (OSError, ValueError) as e:
        raise hub.unavailable(entry, settings, "tokenizer", names, source, e) from None
    if tok.pad_token is None:  # GPT-2 and Llama have none; padding is removed before anything is stored
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def _text_limit(config, tokenizer) -> int:
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", MAX_TEXT_TOKENS)
    return int(min(positions, MAX_TEXT_TOKENS, getattr(tokenizer, "model_max_length", None) or MAX_TEXT_TOKENS))


def _hf_image_spec(source: hub.Source, config) -> ImageSpec:
    from transformers import AutoImageProcessor

    mean, std, size = DEFAULT_NORM, DEFAULT_NORM, config.image_size
    try:
        proc = AutoImageProcessor.from_pretrained(source.name, **source.kwargs)
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        # The processor's crop is the size the model is meant to see (DINOv2: 224, though its
        # position embeddings were trained at 518 and are interpolated).
        crop = getattr(proc, "crop_size", None) or {}
        size = int(crop.get("height", size))
    except (OSError, ValueError):
        pass  # a model without a processor config: ViT's default normalisation
    registers = getattr(config, "num_register_tokens", 0) or 0
    return ImageSpec(size=size, patch=config.patch_size, mean=mean, std=std, prefix_tokens=1 + registers)


def _pixel_batch(loaded: LoadedModel, prepared: Prepared, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels: (batch, 3, size, size) in the model's dtype, valid: (batch, tokens) all True)."""
    dev = loaded.device
    pixels = prepared.pixels[idx].to(dev, dtype=next(loaded.model.parameters()).dtype)
    return pixels, torch.ones(len(idx), int(prepared.lengths[idx[0]]), dtype=torch.bool, device=dev)


# ---- timm ------------------------------------------------------------------------------------


class TimmViT(Adapter):
    """timm VisionTransformer: attention blocks at `model.blocks[i].attn`, q/k read after their q/k norms."""

    name = "timm-vit"

    def load(self, entry, settings, device, reporter):
        if entry.loader == "random":
            from timm.models.vision_transformer import VisionTransformer

            with _seeded():
                model = VisionTransformer(num_classes=0, **entry.config)
            return self._loaded(entry, model, device, None)
        import timm

        weights, source = _timm_weights(entry, settings)
        try:
            model = timm.create_model(entry.source, pretrained=True, num_classes=0,
                                      pretrained_cfg_overlay={"file": str(weights)} if weights else None)
        except (OSError, ValueError, RuntimeError) as e:
            raise hub.unavailable(entry, settings, "weights", entry.local, source, e) from None
        return self._loaded(entry, model, device, source, weights)

    def inputs(self, loaded, prepared, idx):
        pixels, valid = _pixel_batch(loaded, prepared, idx)
        return {"x": pixels}, valid

    def forward(self, model, inputs):
        model.forward_features(inputs["x"])

    def trace(self, model, sink):
        hooks = []
        for layer, block in enumerate(model.blocks):
            pending: dict[str, torch.Tensor] = {}  # q waits here for the k of the same call
            hooks.append((block.attn.q_norm, partial(_keep_q, pending)))
            hooks.append((block.attn.k_norm, partial(_report_qk, pending, layer, float(block.attn.scale), sink)))
        return forward_hooks(hooks)

    def reference_attention(self, model, inputs):
        probs: list[torch.Tensor | None] = [None] * len(model.blocks)
        # The softmax output is what enters attn_drop when fused attention is off.
        hooks = [(block.attn.attn_drop, partial(_keep_input, probs, i)) for i, block in enumerate(model.blocks)]
        with _unfused(model), forward_hooks(hooks):
            self.forward(model, inputs)
        return probs

    def is_causal(self, model):
        return False  # a ViT attends over all patches

    def _loaded(self, entry: ModelEntry, model, device, source: hub.Source | None,
                weights: Path | None = None) -> LoadedModel:
        """`source` None: random init; `weights` None: timm downloaded them."""
        attn = model.blocks[0].attn
        cfg = getattr(model, "pretrained_cfg", None) or {}
        spec = ImageSpec(size=model.patch_embed.img_size[0], patch=model.patch_embed.patch_size[0],
                         mean=tuple(cfg.get("mean", DEFAULT_NORM)), std=tuple(cfg.get("std", DEFAULT_NORM)),
                         prefix_tokens=getattr(model, "num_prefix_tokens", 1))
        where = RANDOM_SOURCE if source is None else source.name if source.local else entry.source
        revision = hub.revision(source, weights.name) if source and weights else ""
        return LoadedModel(entry, model, device, len(model.blocks), attn.num_heads, attn.head_dim,
                           self.causal(entry, model), image=spec, source=where, revision=revision, adapter=self)


def _timm_weights(entry: ModelEntry, settings: Settings) -> tuple[Path | None, hub.Source]:
    """(weights file or None to let timm download it, the Source it stands for).

    timm would ask the hub even when offline, with retries: so a local folder, then the
    Hugging Face cache are looked up here, and an offline miss is an error at once.
    """
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(entry.source)
    hub_id = getattr(cfg, "hf_hub_id", None) or f"timm/{entry.source}"
    source = hub.resolve(settings, entry.local, hub_id)
    if source.local:
        files = [p for p in (Path(source.name) / f for f in TIMM_WEIGHT_FILES) if p.exists()]
        if not files:
            raise hub.unavailable(entry, settings, "weights", entry.local, source,
                                  FileNotFoundError(f"no {' or '.join(TIMM_WEIGHT_FILES)}"))
        return files[0], source
    cached = hub.cached_file(hub_id, TIMM_WEIGHT_FILES)
    if cached is None and source.offline:
        raise hub.unavailable(entry, settings, "weights", entry.local, source)
    return cached, source


def _keep_q(pending: dict, _module, _inputs, q: torch.Tensor) -> None:
    pending["q"] = q


def _report_qk(pending: dict, layer: int, scale: float, sink: Sink, _module, _inputs, k: torch.Tensor) -> None:
    sink(layer, pending.pop("q"), k, scale)


def _keep_input(probs: list, layer: int, _module, inputs: tuple, _output) -> None:
    probs[layer] = inputs[0]


@contextmanager
def _unfused(model: torch.nn.Module) -> Iterator[None]:
    """While active, timm attention computes its softmax explicitly (so attn_drop sees it)."""
    previous = [block.attn.fused_attn for block in model.blocks]
    try:
        for block in model.blocks:
            block.attn.fused_attn = False
        yield
    finally:
        for block, fused in zip(model.blocks, previous):
            block.attn.fused_attn = fused


# ---- which adapter ---------------------------------------------------------------------------

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (HFText(), HFVision(), TimmViT())}


def adapter_for(entry: ModelEntry) -> Adapter:
    """The adapter of a catalog entry: timm for timm weights or random 'timm-*' architectures, else transformers."""
    if entry.loader == "timm" or entry.source.startswith("timm-"):
        return ADAPTERS["timm-vit"]
    return ADAPTERS["hf-text" if entry.modality == "text" else "hf-vision"]
