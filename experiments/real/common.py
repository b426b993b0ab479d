"""Shared pieces of the real-model experiment: the model, tokenization, JSON caching.

`load(name)` gives (model, tokenizer) for `embedded` (SmolLM2-135M-Instruct), any local
folder or hub name, or `tiny` (a random character-level Llama from `cadft.tiny`, for the
smoke run: no download). The model goes to the GPU when there is one. `init_worker` sets up
a process of Part B's pool (`--jobs`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def add_paths() -> None:
    """The library (src/) and the shared experiment modules (lab.py, stats.py, variance.py)
    first on sys.path, once each."""
    for folder in (str(REPO / "src"), str(REPO / "experiments")):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)


add_paths()

TINY = "tiny"


def init_worker() -> None:
    """A worker process of Part B's pool: this module's paths and one torch thread (the
    workers share the cores)."""
    add_paths()
    torch.set_num_threads(1)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(name: str, *, seed: int = 0):
    """(model, tokenizer) in float32 on `device()`, eval mode, pad token set."""
    if name == TINY:
        from cadft.tiny import tiny_llama, tiny_tokenizer

        tok = tiny_tokenizer()
        model = tiny_llama(tok, hidden_size=32, num_layers=2, max_position_embeddings=2048, seed=seed)
    else:
        from cadft.models import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(name, dtype=torch.float32)
    return model.to(device()).eval(), tok


def tokenize(tok, rows: list[dict], max_length: int) -> list[dict]:
    """input_ids/labels of each demonstration, as the trainer and `cadft score` build them."""
    from cadft.scoring import tokenize_demonstration

    return [tokenize_demonstration(tok, row, max_length=max_length) for row in rows]
