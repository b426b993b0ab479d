"""Which generation backend an evaluation uses, and loading the model for it.

    backend = choose_backend("auto")                  # "vllm" with vLLM and a CUDA GPU, else "transformers"
    model, tokenizer = load_model("runs/cadft", backend, seed=0)
"""

from __future__ import annotations

from .vllm import vllm_available

__all__ = ["BACKENDS", "choose_backend", "load_model"]

BACKENDS = ("auto", "transformers", "vllm")


def choose_backend(requested: str) -> str:
    """`requested` resolved: "auto" is vLLM when it is usable here, transformers otherwise;
    "vllm" where it is not usable is a ValueError."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    if requested == "auto":
        return "vllm" if vllm_available() else "transformers"
    if requested == "vllm" and not vllm_available():
        raise ValueError("--backend vllm needs the `vllm` package (pip install cadft[vllm]) and a CUDA GPU")
    return requested


def load_model(name_or_path: str, backend: str, *, seed: int = 0):
    """(model, tokenizer): a `vllm.LLM` for "vllm" (an adapter merged first, `load_vllm`), else
    the transformers model, on the GPU when there is one."""
    if backend == "vllm":
        from .vllm import load_vllm

        return load_vllm(name_or_path, seed=seed)
    import torch

    from ..model.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(name_or_path)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, tokenizer
