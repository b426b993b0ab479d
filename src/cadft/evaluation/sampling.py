"""The generation protocol of an evaluation: how many answers per prompt, and how they are sampled.

    Sampling()                                   # the papers': 16 samples, temperature 1.0, 4096 tokens
    Sampling(num_samples=1, temperature=0)       # greedy, one answer per problem
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Sampling"]


@dataclass(frozen=True)
class Sampling:
    """The generation protocol; the papers': 16 samples, temperature 1.0, top_p 1.0, 4096 tokens."""

    num_samples: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 4096
    seed: int = 0

    def __post_init__(self):
        if self.num_samples < 1 or self.max_new_tokens < 1:
            raise ValueError(f"num_samples and max_new_tokens must be >= 1: {self}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1: {self}")
        if self.temperature == 0 and self.num_samples > 1:
            raise ValueError("greedy decoding (temperature 0) gives one answer per problem: set num_samples 1")

    def describe(self) -> str:
        decoding = "greedy" if self.temperature == 0 else f"temperature {self.temperature:g}, top_p {self.top_p:g}"
        return (f"{self.num_samples} sample{'s' if self.num_samples > 1 else ''} per problem, {decoding}, "
                f"max_new_tokens {self.max_new_tokens}, seed {self.seed}")
