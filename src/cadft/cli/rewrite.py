"""`cadft rewrite`: one offline compatibility-guided rewriting round over a dataset.

Scores every demonstration under the model and selects at most `--rewrite_budget` of
them: by default (`--rewrite_selection top_u`, the paper's) those with the highest
u = -log c, the length-normalised NLL; with `--rewrite_selection flagged` those whose CADFT
weight before clipping, c**beta / m, is below `--rewrite_flag_threshold`, least compatible
first. Then the round runs (`cadft.rewriting.RewriteRound`, the one training runs, built
from the same CADFTConfig fields): by default (`--rewrite_preset paper`) each selected
target is replaced with probability 0.5 by the model's own answer to the prompt alone,
unverified; `--rewrite_preset verified` shows the generator the original as a reference,
keeps a candidate only if the verifier agrees with the reference answer and its
compatibility beats the original's by `--rewrite_min_gain`. Each gate has its own flag.
It writes the dataset with originals and rewrites side by side
plus the provenance of every selected sample.

    cadft rewrite --dataset_path ../shared/data/gsm8k/train.jsonl --limit 200 \\
        --output_dir gsm8k-rewritten --rewrite_preset verified --rewrite_answer_column final_answer

The flags that set a CADFTConfig field are named as the field, as in `cadft train
--rewrite`; the old short names (--preset, --budget, --beta, ...) still work, deprecated.
"""

from __future__ import annotations

import argparse
import os

from .common import CommandParser, add_model_argument, check_model_path
from .config_flags import add_config_flags, deprecation_epilog, flag_names

__all__ = ["build_parser", "main"]


# CADFTConfig's fields, as in `cadft train --rewrite`, each with its old flag (deprecated)
_OLD_FLAGS = {
    "rewrite_preset": "--preset", "rewrite_selection": "--selection", "rewrite_verifier": "--verifier",
    "rewrite_reference_in_prompt": "--reference_in_prompt", "rewrite_gain_gate": "--gain_gate",
    "rewrite_replace_prob": "--replace_prob", "rewrite_answer_column": "--answer_column",
    "rewrite_generator": "--generator", "cadft_beta": "--beta", "rewrite_flag_threshold": "--flag_threshold",
    "rewrite_budget": "--budget", "rewrite_num_candidates": "--num_candidates", "rewrite_min_gain": "--min_gain",
    "rewrite_max_new_tokens": "--max_new_tokens", "rewrite_temperature": "--temperature", "rewrite_top_p": "--top_p",
    "rewrite_max_reply_chars": "--max_reply_chars",
}
# Where one offline round reads a field otherwise than training does
_NOTES = {
    "rewrite_selection": "Here every sample has one visit: flagged selects those whose c**beta / m is below "
    "rewrite_flag_threshold.",
    "rewrite_replace_prob": "Here the draw is seeded by --seed.",
    "rewrite_generator": "Here 'policy' is the scoring model.",
    "cadft_beta": "Here: the beta of c**beta / m for rewrite_selection flagged.",
    "rewrite_budget": "Here a fraction or a count of the dataset's rows.",
}


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="cadft rewrite", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes OUTPUT_DIR/rewrites.jsonl (provenance) and OUTPUT_DIR/rewritten_dataset.jsonl.\n"
        + deprecation_epilog(_OLD_FLAGS),
    )
    add_model_argument(p)  # the model that scores (and, with --rewrite_generator policy, rewrites)
    p.add_argument("--dataset_path", required=True, help="Local .jsonl/.json/.parquet/.csv prompt-completion data.")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--limit", type=int, default=None, help="Use only the first N rows.")
    add_config_flags(p, _OLD_FLAGS, notes=_NOTES)
    p.add_argument("--normalizer", type=float, default=None, help="m (default: the dataset's mean of c**beta).")
    p.add_argument("--template_file", default=None, help="Text file with a template using {question} and {reference}.")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--max_length", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0, help="Seed of the sampling and of the replacement draws.")
    return p


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """The command's flags as CADFTConfig fields, checked as CADFTConfig checks them (in the
    command line's spelling), the preset's gates filled in. `rewrite_seed` is unset: the
    draw is seeded by --seed; `cadft_normalizer` is --normalizer, a fixed m."""
    from ..rewriting.presets import resolve_gates

    flag = flag_names(args, _OLD_FLAGS)  # the command line's spelling of each field
    gates = resolve_gates(args.rewrite_preset, verifier=args.rewrite_verifier,
                          reference_in_prompt=args.rewrite_reference_in_prompt, gain_gate=args.rewrite_gain_gate,
                          replace_prob=args.rewrite_replace_prob, num_candidates=args.rewrite_num_candidates)
    vars(args).update({f"rewrite_{name}": value for name, value in gates.items()})
    for name in ("rewrite_num_candidates", "rewrite_max_new_tokens", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"{flag(name)} must be >= 1")
    if args.rewrite_budget <= 0 or args.cadft_beta < 0:
        parser.error(f"{flag('rewrite_budget')} must be > 0 and {flag('cadft_beta')} >= 0")
    if not 0 <= args.rewrite_replace_prob <= 1:
        parser.error(f"{flag('rewrite_replace_prob')} must be in [0, 1]")
    if args.template_file and not args.rewrite_reference_in_prompt:
        old_names = flag("rewrite_preset") == "--preset"
        parser.error(f"--template_file is the prompt with a reference: it needs {flag('rewrite_reference_in_prompt')} "
                     f"true (or {flag('rewrite_preset')} verified)"
                     + ("" if old_names else "; formerly --reference_in_prompt true"))  # until the old flags go
    template = open(args.template_file, encoding="utf-8").read() if args.template_file else None
    return {**vars(args), "rewrite_template": template, "cadft_normalizer": args.normalizer}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.path.exists(os.path.join(args.output_dir, "rewrites.jsonl")):
        parser.error(f"{args.output_dir} already holds a rewrites.jsonl; choose a new --output_dir")
    if args.template_file and not os.path.isfile(args.template_file):
        parser.error(f"--template_file: file not found: {args.template_file}")
    config = _config(parser, args)
    # Data first, light: every row must be one a round can rewrite (prompt + completion,
    # a conversational prompt ending with a user turn), checked before torch is imported
    from ..data.loading import as_dataset, read_demonstrations

    table = read_demonstrations(args.dataset_path, limit=args.limit, rewriting=True)
    columns = list(table.rows[0])
    if args.rewrite_answer_column and args.rewrite_answer_column not in columns:
        flag = flag_names(args, _OLD_FLAGS)
        parser.error(f"{flag('rewrite_answer_column')} {args.rewrite_answer_column!r} is not a column of "
                     f"{args.dataset_path} (columns: {', '.join(columns)})")
    check_model_path(args.model_name_or_path)

    import torch

    from ..model.loading import load_model_and_tokenizer
    from ..rewriting.manager import score_pairs, target_length
    from ..rewriting.round import RewriteRound, completion_text
    from ..rewriting.store import RewriteStore

    try:
        round_ = RewriteRound(config)
    except (ValueError, ImportError, AttributeError) as e:
        parser.error(str(e))

    torch.manual_seed(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    generator = round_.make_generator(model, tokenizer)
    try:  # before scoring: a tokenizer without a chat template, an unreachable server
        getattr(generator, "check", lambda: None)()
    except (ValueError, ConnectionError, PermissionError) as e:
        parser.error(str(e))
    rows = [{**row, "sample_id": row.get("sample_id", i)} for i, row in enumerate(as_dataset(table.rows, table.source))]
    like = rows[0]["completion"]
    score = lambda pairs: score_pairs(  # noqa: E731
        model, tokenizer, pairs, like=like, max_length=args.max_length, batch_size=args.batch_size
    )

    selected, u, chosen = round_.select_once(score([(r["prompt"], completion_text(r["completion"])) for r in rows]))
    items = [round_.item(rows[i], u_tracked=u[i]) for i in selected]
    result = round_.run(items, generator=generator, score=score, round_index=1, step=0,
                        length=lambda prompt, text: target_length(tokenizer, prompt, like, text))
    store = RewriteStore()
    store.add_round(result.records, step=0)
    store.append_provenance(args.output_dir, result.records)
    path = store.save_dataset(rows, args.output_dir)

    print(f"\nScored {len(rows)} demonstrations; selected {chosen}.")
    print("Round: " + ", ".join(f"{k.split('/')[1]}={v:g}" for k, v in result.metrics.items()))
    print(f"Provenance: {os.path.join(args.output_dir, 'rewrites.jsonl')}")
    print(f"Dataset (originals and rewrites side by side): {path}")
    return 0
