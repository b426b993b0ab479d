"""Compatibility-guided rewriting of demonstrations.

A rewriting round asks a generator (`generators`) for its own version of a persistently
incompatible demonstration, prompted with `prompt.rewrite_messages`.
"""

from .generators import (
    GENERATOR_SPECS,
    Candidate,
    GenerationSettings,
    LocalModelGenerator,
    OpenAIChatGenerator,
    PolicyGenerator,
    RewriteGenerator,
    VLLMGenerator,
    make_generator,
)
from .prompt import DEFAULT_REWRITE_TEMPLATE, check_template, rewrite_messages

__all__ = [
    "DEFAULT_REWRITE_TEMPLATE",
    "GENERATOR_SPECS",
    "Candidate",
    "GenerationSettings",
    "LocalModelGenerator",
    "OpenAIChatGenerator",
    "PolicyGenerator",
    "RewriteGenerator",
    "VLLMGenerator",
    "check_template",
    "make_generator",
    "rewrite_messages",
]
