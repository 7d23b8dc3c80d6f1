"""Capture throughput: tokens/s of capturing every head's q/k to host memory (float16)
against the plain forward pass of the same model, in the same run.

    python bench/capture.py [--device cpu|cuda] [--items 48] [--repeats 3]

Models are random-init at real sizes (GPT-2 small, BERT base, ViT-B/16): speed does not
depend on the weights. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from qkatlas.capture.adapters import ADAPTERS, load_tokenizer
from qkatlas.capture.inputs import prepare
from qkatlas.capture.loader import LoadedModel, pick_device
from qkatlas.capture.run import batches, capture
from qkatlas.catalog import get_model
from qkatlas.corpus import load_corpus
from qkatlas.settings import Settings

from machine import recorded  # bench/machine.py


def build_model(kind: str, settings: Settings, device: torch.device) -> LoadedModel:
    torch.manual_seed(0)
    if kind == "vit-b16":
        from transformers import ViTConfig, ViTModel

        from qkatlas.capture.loader import ImageSpec

        model = ViTModel(ViTConfig(attn_implementation="sdpa"), add_pooling_layer=False)
        spec = ImageSpec(size=224, patch=16, mean=(0.5,) * 3, std=(0.5,) * 3)
        entry = get_model(settings, "tiny-vit")
        return LoadedModel(entry, model.eval().to(device), device, 12, 12, 64, False, image=spec,
                           adapter=ADAPTERS["hf-vision"])
    entry = get_model(settings, "tiny-gpt2" if kind == "gpt2-small" else "tiny-bert")
    tok = load_tokenizer(entry, settings)
    if kind == "gpt2-small":
        from transformers import GPT2Config, GPT2Model

        model = GPT2Model(GPT2Config(vocab_size=len(tok), attn_implementation="sdpa"))
    else:
        from transformers import BertConfig, BertModel

        model = BertModel(BertConfig(vocab_size=len(tok), attn_implementation="sdpa"), add_pooling_layer=False)
    return LoadedModel(entry, model.eval().to(device), device, 12, 12, 64, kind == "gpt2-small", tokenizer=tok,
                       max_length=512, adapter=ADAPTERS["hf-text"])


@torch.inference_mode()
def plain_forward(loaded: LoadedModel, prepared, batch_size: int) -> None:
    for idx in batches(prepared, batch_size):
        inputs, _ = loaded.adapter.inputs(loaded, prepared, idx)
        loaded.adapter.forward(loaded.model, inputs)
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="gpt2-small,bert-base,vit-b16")
    args = ap.parse_args()
    settings = Settings.from_env()
    device = pick_device(args.device)
    results = []
    report: dict = {"bench": "capture", "device": str(device), "items": args.items,
                    "dtype": "float32" if device.type == "cpu" else "float16", "results": results}
    with recorded(report):
        for kind in args.models.split(","):
            results.append(measure(kind, args, settings, device))
    print(json.dumps(report, indent=2))


def measure(kind: str, args, settings: Settings, device: torch.device) -> dict:
    """Plain forward vs capture of every head's q/k to host, best of `repeats`, on one model."""
    loaded = build_model(kind, settings, device)
    if device.type == "cuda":
        loaded.model.half()
    modality = "image" if kind == "vit-b16" else "text"
    items = list(load_corpus("default", modality, args.items).items)
    prepared = prepare(loaded, items)
    plain_forward(loaded, prepared, args.batch_size)  # warm-up
    plain = best_of(lambda: plain_forward(loaded, prepared, args.batch_size), args.repeats)
    captured = best_of(lambda: capture(loaded, prepared, args.batch_size, dtype=np.float16), args.repeats)
    return {
        "model": kind,
        "tokens": prepared.n_tokens,
        "plain_forward_tokens_per_s": round(prepared.n_tokens / plain),
        "capture_tokens_per_s": round(prepared.n_tokens / captured),
        "capture_over_plain": round(plain / captured, 3),
    }


if __name__ == "__main__":
    main()
