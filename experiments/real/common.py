"""Shared pieces of the real-model experiment: the model, tokenization, JSON caching.

`load(name)` gives (model, tokenizer) for `embedded` (SmolLM2-135M-Instruct), any local
folder or hub name, or `tiny` (a random character-level Llama from `cadft.model.tiny`, for the
smoke run: no download). The model goes to the GPU when there is one. `init_worker` sets up
a process of Part B's pool (`--jobs`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.methods import EARLIER_ESTIMATOR

REPO = Path(__file__).resolve().parents[2]

TINY = "tiny"


# The page's short names of the CADFTConfig fields that make an estimator
FIELDS = {"estimator": "cadft_estimator", "beta": "cadft_beta", "alpha": "cadft_token_power", "eps": "cadft_eps",
          "scope": "cadft_scope", "w_min": "cadft_w_min", "w_max": "cadft_w_max"}


def _read(**estimator) -> dict:
    """The estimator's settings as `CADFTConfig` resolves them, by their short names; the
    fields the chosen estimator does not read stay None there and are left out."""
    from cadft import CADFTConfig

    c = CADFTConfig(output_dir="unused", report_to="none", use_cpu=not torch.cuda.is_available(), **estimator)
    return {short: getattr(c, field) for short, field in FIELDS.items() if getattr(c, field) is not None}


def config_fields(settings: dict) -> dict:
    """The CADFTConfig fields of settings read by `defaults()` (short names -> field names)."""
    return {FIELDS[short]: value for short, value in settings.items()}


def has_normalizer(estimator) -> bool:
    """Whether an estimator (`cadft.estimators`) holds a running normaliser m, calibrated
    before training (the earlier estimator; the trainer's own test, `CADFTTrainer.normalizer`):
    calibrated, it weighs each row by itself, where the others weigh a row within its batch."""
    return getattr(estimator, "normalizer", None) is not None


def defaults() -> dict:
    """Both estimators' defaults, read from the library at run time: `paper` (`CADFTConfig()`)
    and `earlier` (`CADFTConfig(**EARLIER_ESTIMATOR)`)."""
    return {"paper": _read(), "earlier": _read(**EARLIER_ESTIMATOR)}


def init_worker() -> None:
    """A worker process of Part B's pool: one torch thread (the workers share the cores)."""
    torch.set_num_threads(1)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(name: str, *, seed: int = 0):
    """(model, tokenizer) in float32 on `device()`, eval mode, pad token set."""
    if name == TINY:
        from cadft.model.tiny import tiny_llama, tiny_tokenizer

        tok = tiny_tokenizer()
        model = tiny_llama(tok, hidden_size=32, num_layers=2, max_position_embeddings=2048, seed=seed)
    else:
        from cadft.model.loading import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(name, dtype=torch.float32)
    return model.to(device()).eval(), tok


def tokenize(tok, rows: list[dict], max_length: int) -> list[dict]:
    """input_ids/labels of each demonstration, as the trainer and `cadft score` build them."""
    from cadft.model.scoring import tokenize_demonstration

    return [tokenize_demonstration(tok, row, max_length=max_length) for row in rows]
