"""Shared pieces of the real-model experiment: the model, tokenization, JSON caching.

`load(name)` gives (model, tokenizer) for `embedded` (SmolLM2-135M-Instruct), any local
folder or hub name, or `tiny` (a random character-level Llama from `cadft.tiny`, for the
smoke run: no download). The model goes to the GPU when there is one.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "experiments"))  # stats.py and provenance.py (shared)

TINY = "tiny"


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


def machine() -> str:
    """One line: CPU or GPU model, cores, torch version."""
    if torch.cuda.is_available():
        hw = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        hw = f"CPU {name}"
    return f"{hw}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def save_json(obj, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float))


def load_json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
