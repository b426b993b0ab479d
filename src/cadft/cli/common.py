"""Arguments that several `cadft` subcommands share."""

from __future__ import annotations

import argparse

MODEL_HELP = "'embedded' (SmolLM2-135M-Instruct), a model folder, a LoRA adapter folder, or a hub name."


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """`--model_name_or_path`, defaulting to the embedded model."""
    parser.add_argument("--model_name_or_path", default="embedded", help=MODEL_HELP)
