"""`cadft rewrite`: one offline compatibility-guided rewriting round over a dataset.

Scores every demonstration under the model and selects at most `--budget` of them: by
default (`--selection top_u`, the paper's) those with the highest u = -log c, the
length-normalised NLL; with `--selection flagged` those whose CADFT weight before
clipping, c**beta / m, is below `--flag_threshold`, least compatible first. Then the
round runs with the same gates as in training: by default (`--preset paper`) each
selected target is replaced with probability 0.5 by the model's own answer to the
prompt alone, unverified; `--preset verified` shows the generator the original as a
reference, keeps a candidate only if the verifier agrees with the reference answer and
its compatibility beats the original's by `--min_gain`. Each gate has its own flag. It
writes the dataset with originals and rewrites side by side plus the provenance of every
selected sample.

    cadft rewrite --dataset_path ../shared/data/gsm8k/train.jsonl --limit 200 \\
        --output_dir gsm8k-rewritten --preset verified --answer_column final_answer
"""

from __future__ import annotations

import argparse
import math
import os

from .. import defaults
from .common import CommandParser, add_model_argument, check_model_path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="cadft rewrite", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes OUTPUT_DIR/rewrites.jsonl (provenance) and OUTPUT_DIR/rewritten_dataset.jsonl.",
    )
    add_model_argument(p)  # the model that scores (and, with --generator policy, rewrites)
    p.add_argument("--dataset_path", required=True, help="Local .jsonl/.json/.parquet/.csv prompt-completion data.")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--limit", type=int, default=None, help="Use only the first N rows.")
    p.add_argument("--preset", choices=("paper", "verified"), default="paper",
                   help="paper: prompt alone, no verifier, no gain gate, replace with probability 0.5, one candidate; "
                   "verified: reference in the prompt, math verifier, gain gate, probability 1, two candidates. "
                   "Sets the gate flags below that are not given (default: paper).")
    p.add_argument("--selection", choices=("top_u", "flagged"), default="top_u",
                   help="top_u: the highest u = -log c; flagged: c**beta/m below --flag_threshold (default: top_u).")
    p.add_argument("--verifier", default=None, help="math | exact | none | module:function (default: the preset's).")
    p.add_argument("--reference_in_prompt", type=_bool, default=None,
                   help="true: show the original to the generator as a reference (default: the preset's).")
    p.add_argument("--gain_gate", type=_bool, default=None,
                   help="true: replace only if c(rewrite) >= c(original) + --min_gain (default: the preset's).")
    p.add_argument("--replace_prob", type=float, default=None,
                   help="Probability that a selected target is replaced, a draw seeded by --seed (default: the "
                   "preset's).")
    p.add_argument("--answer_column", default=None,
                   help="Column with the reference answer (default: the original demonstration's final answer).")
    p.add_argument("--generator", default="policy",
                   help="policy (the scoring model) | local:<path> | openai:<model>@<base_url> | vllm:<path>.")
    p.add_argument("--beta", type=float, default=defaults.BETA,
                   help="CADFT beta for the weight c**beta/m, as CADFTConfig.cadft_beta (default %(default)s).")
    p.add_argument("--normalizer", type=float, default=None, help="m (default: the dataset's mean of c**beta).")
    p.add_argument("--flag_threshold", type=float, default=0.5,
                   help="--selection flagged: select samples with c**beta/m below this.")
    p.add_argument("--budget", type=float, default=0.005,
                   help="Samples to select: a fraction (<1; at least one) or a count (>=1) (default: 0.005).")
    p.add_argument("--num_candidates", type=int, default=None, help="Candidates per sample (default: the preset's).")
    p.add_argument("--min_gain", type=float, default=0.0, help="The gain gate's margin.")
    p.add_argument("--max_new_tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top_p", type=float, default=0.9)
    p.add_argument("--max_reply_chars", type=int, default=None,
                   help="Reject longer replies unverified (reply_too_large); default: 32 x --max_new_tokens.")
    p.add_argument("--template_file", default=None, help="Text file with a template using {question} and {reference}.")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--max_length", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0, help="Seed of the sampling and of the replacement draws.")
    return p


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.path.exists(os.path.join(args.output_dir, "rewrites.jsonl")):
        parser.error(f"{args.output_dir} already holds a rewrites.jsonl; choose a new --output_dir")
    if args.template_file and not os.path.isfile(args.template_file):
        parser.error(f"--template_file: file not found: {args.template_file}")
    from ..rewriting.presets import resolve_gates

    gates = resolve_gates(args.preset, verifier=args.verifier, reference_in_prompt=args.reference_in_prompt,
                          gain_gate=args.gain_gate, replace_prob=args.replace_prob,
                          num_candidates=args.num_candidates)
    vars(args).update(gates)
    for name in ("num_candidates", "max_new_tokens", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.budget <= 0 or args.beta < 0:
        parser.error("--budget must be > 0 and --beta >= 0")
    if not 0 <= args.replace_prob <= 1:
        parser.error("--replace_prob must be in [0, 1]")
    if args.template_file and not args.reference_in_prompt:
        parser.error("--template_file is the prompt with a reference: it needs --reference_in_prompt true "
                     "(or --preset verified)")
    # Data first, light: every row must be one a round can rewrite (prompt + completion,
    # a conversational prompt ending with a user turn), checked before torch is imported
    from ..data.loading import as_dataset, final_answer, read_demonstrations

    table = read_demonstrations(args.dataset_path, limit=args.limit, rewriting=True)
    columns = list(table.rows[0])
    if args.answer_column and args.answer_column not in columns:
        parser.error(f"--answer_column {args.answer_column!r} is not a column of {args.dataset_path} "
                     f"(columns: {', '.join(columns)})")
    check_model_path(args.model_name_or_path)

    import torch

    from ..estimators import make_estimator
    from ..models import load_model_and_tokenizer
    from ..rewriting.generators import GenerationSettings, make_generator
    from ..rewriting.manager import completion_text, score_pairs, target_length
    from ..rewriting.prompt import DEFAULT_REWRITE_TEMPLATE, check_template
    from ..rewriting.round import RewriteItem, run_round
    from ..rewriting.schedule import budget_count, select_highest_u
    from ..rewriting.store import RewriteStore
    from ..rewriting.tracker import raw_compatibility
    from ..verifiers import get_verifier

    dataset = as_dataset(table.rows, table.source)
    template = DEFAULT_REWRITE_TEMPLATE
    if args.template_file:
        template = open(args.template_file, encoding="utf-8").read()
    try:
        check_template(template)
        verifier = None if args.verifier == "none" else get_verifier(args.verifier)
    except (ValueError, ImportError, AttributeError) as e:
        parser.error(str(e))

    torch.manual_seed(args.seed)
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    generator = make_generator(args.generator, policy_model=model, tokenizer=tokenizer)
    try:  # before scoring: a tokenizer without a chat template, an unreachable server
        getattr(generator, "check", lambda: None)()
    except (ValueError, ConnectionError, PermissionError) as e:
        parser.error(str(e))
    rows = [{**row, "sample_id": row.get("sample_id", i)} for i, row in enumerate(dataset)]
    like = rows[0]["completion"]
    score = lambda pairs: score_pairs(  # noqa: E731
        model, tokenizer, pairs, like=like, max_length=args.max_length, batch_size=args.batch_size
    )

    compat = torch.tensor(score([(r["prompt"], completion_text(r["completion"])) for r in rows]))
    budget = budget_count(args.budget, len(rows))
    u = [raw_compatibility(c) for c in compat.tolist()]
    if args.selection == "top_u":
        selected = select_highest_u({i: (u[i], 1) for i in range(len(rows))}, min_visits=1, rewritten=set(),
                                    budget=budget)
        chosen = f"the {len(selected)} with the highest u = -log c (budget)"
    else:
        # The earlier estimator's weight before clipping, c**beta / m, with m the dataset's mean of
        # c**beta (as its calibration computes it) unless --normalizer fixes it
        earlier = make_estimator({"cadft_normalization": "ema", "cadft_beta": args.beta, "cadft_w_min": 0.0,
                                  "cadft_w_max": math.inf, "cadft_normalizer": args.normalizer})
        _, extras = earlier.weights(torch.tensor(u), torch.ones(len(u), dtype=torch.bool))
        raw, m = extras["raw_weight"], math.exp(extras["log_normalizer"])
        flagged = [i for i in torch.argsort(compat).tolist() if raw[i] < args.flag_threshold]
        selected = flagged[:budget]
        chosen = (f"m = {m:.4f}; {len(flagged)} below the flag threshold {args.flag_threshold}; "
                  f"{len(selected)} selected (budget)")

    def reference(row):
        if args.answer_column:
            value = row[args.answer_column]
            return None if value is None or str(value).strip() == "" else str(value)
        return final_answer(completion_text(row["completion"]))

    items = [RewriteItem(rows[i]["sample_id"], rows[i]["prompt"], completion_text(rows[i]["completion"]),
                         reference(rows[i]), u_tracked=u[i]) for i in selected]
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                  top_p=args.top_p, num_candidates=args.num_candidates,
                                  max_reply_chars=args.max_reply_chars)
    result = run_round(items, generator=generator, verifier=verifier, score=score, settings=settings,
                       min_gain=args.min_gain, round_index=1, step=0, template=template, verifier_name=args.verifier,
                       length=lambda prompt, text: target_length(tokenizer, prompt, like, text),
                       max_length=args.max_length, needs_reference=verifier is not None,
                       reference_in_prompt=args.reference_in_prompt, gain_gate=args.gain_gate,
                       replace_prob=args.replace_prob, draw_seed=args.seed)
    store = RewriteStore()
    store.add_round(result.records, step=0)
    store.append_provenance(args.output_dir, result.records)
    path = store.save_dataset(rows, args.output_dir)

    print(f"\nScored {len(rows)} demonstrations; selected {chosen}.")
    print("Round: " + ", ".join(f"{k.split('/')[1]}={v:g}" for k, v in result.metrics.items()))
    print(f"Provenance: {os.path.join(args.output_dir, 'rewrites.jsonl')}")
    print(f"Dataset (originals and rewrites side by side): {path}")
    return 0
