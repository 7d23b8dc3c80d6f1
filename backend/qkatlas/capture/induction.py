"""The induction probe's input: sequences of random tokens, each repeated twice, through the model.

Induction is the one statistic the corpus cannot show: it needs a sequence whose second half
repeats its first (Olsson et al., "In-context Learning and Induction Heads", 2022). The
sequences go through the same capture as the corpus (run.py), so the q/k they give are the
ones the atlas's heads use; stats_run.py turns them into scores.
"""

from __future__ import annotations

import numpy as np

from .inputs import Prepared
from .model import LoadedModel
from .run import Captured, capture

SEQUENCES = 8
PERIOD = 32  # random tokens per copy
SEED = 0


def repeated_tokens(loaded: LoadedModel, sequences: int = SEQUENCES, period: int = PERIOD,
                    seed: int = SEED) -> tuple[Prepared, int, int]:
    """(prepared input, start, period): each sequence is [BOS] + x + x, x `period` distinct random
    non-special token ids; `start` is where the first copy begins (1 after a BOS, else 0)."""
    tok = loaded.tokenizer
    bos = getattr(tok, "bos_token_id", None)
    start = 0 if bos is None else 1
    period = min(period, (loaded.max_length - start) // 2)
    vocab = min(len(tok), getattr(loaded.model.config, "vocab_size", None) or len(tok))
    candidates = np.setdiff1d(np.arange(vocab), np.asarray(tok.all_special_ids, dtype=np.int64))
    rng = np.random.default_rng(seed)
    ids = []
    for _ in range(sequences):
        x = rng.choice(candidates, period, replace=False).tolist()
        ids.append(([bos] if bos is not None else []) + x + x)
    lengths = np.array([len(s) for s in ids])
    return Prepared(lengths, np.concatenate([[0], np.cumsum(lengths)]), input_ids=ids), start, period


def capture_repeated(loaded: LoadedModel, batch_size: int = SEQUENCES) -> tuple[Captured, Prepared, int, int]:
    """(every head's q/k on the repeated sequences, their input, start, period). Text models only."""
    prepared, start, period = repeated_tokens(loaded)
    return capture(loaded, prepared, batch_size=batch_size, dtype=np.float32), prepared, start, period
