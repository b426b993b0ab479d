"""`cadft score`: a per-demonstration audit of a dataset before training.

For every demonstration: its trainable tokens, mean token log-probability s, its raw
compatibility u = -s (the length-normalised NLL) and c = exp(s) under the model, and the
CADFT weight it would get relative to the whole file. The paper's estimator (the default):
z = (u - mean u) / (std u + eps) over every scored row, w = exp(-beta * max(0, z)); in
training the statistics are those of each optimizer step's global batch instead. The
earlier estimator (--cadft_estimator ema): w = clip(c**beta / m, w_min, w_max), with m the
file's own mean of c**beta (what the trainer's calibration estimates) unless --normalizer
is given. Every weight comes from cadft.losses, in log space. The estimator's flags are
CADFTConfig's fields, as in `cadft train`; the old --normalization, --beta, --eps, --w_min
and --w_max still work, deprecated.

    cadft score --dataset_path ../shared/data/gsm8k/train.jsonl --limit 200 --output gsm8k-scores.jsonl
    cadft score --model_name_or_path runs/cadft --dataset_path data.parquet --output scores.parquet --cadft_beta 2

Writes one row per demonstration (.jsonl or .parquet, chosen by the extension) with its
tag columns carried through, a histogram PNG beside it, and prints a summary: quantiles,
a text histogram, the least compatible demonstrations and per-tag means. See docs/score.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

from cadft import defaults
from cadft.cli.common import CommandError, CommandParser, add_model_argument, check_model_path
from cadft.cli.config_flags import add_config_flags, deprecation_epilog, flag_names

__all__ = ["build_parser", "main"]

OUTPUT_FORMATS = (".jsonl", ".parquet")
QUANTILES = (0, 10, 25, 50, 75, 90, 100)
# Columns that hold the demonstration itself; every other scalar column is a tag
_TEXT_COLUMNS = ("prompt", "completion", "messages", "conversations", "text")
_SCORE_COLUMNS = ("sample_id", "num_tokens", "mean_logprob", "u", "compatibility", "z", "weight", "raw_weight",
                  "clipped")
# Text histogram: the narrowest of these bin widths that spans the data in at most _MAX_BINS
# bins, aligned to multiples of the width so two runs' histograms line up
_BIN_WIDTHS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
_MAX_BINS = 20
_BAR = 40  # characters of the longest histogram bar
_SNIPPET = 70  # characters of completion shown per least-compatible row
_MAX_TAG_VALUES = 20  # per-tag table rows (most frequent first beyond this)
# The estimator's flags: CADFTConfig's fields, as in `cadft train`, each with its old flag (deprecated)
_OLD_FLAGS = {"cadft_estimator": "--normalization", "cadft_beta": "--beta", "cadft_eps": "--eps",
              "cadft_w_min": "--w_min", "cadft_w_max": "--w_max"}


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="cadft score",
        description="Score each demonstration's compatibility under a model and the CADFT weight it would get.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog=deprecation_epilog(_OLD_FLAGS),
    )
    add_model_argument(parser)
    parser.add_argument(
        "--dataset_path",
        required=True,
        help="Demonstrations (.jsonl/.json/.parquet/.csv): prompt+completion, messages, text, GSM8K or MATH rows.",
    )
    parser.add_argument(
        "--output", required=True, help="Per-sample scores, .jsonl or .parquet; the histogram goes beside it as .png."
    )
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N demonstrations.")
    parser.add_argument("--batch_size", type=int, default=16, help="Rows per forward pass (rows of similar length).")
    parser.add_argument(
        "--max_length",
        type=int,
        default=1024,
        help="Truncate each demonstration to this many tokens, as training does (TRL's default).",
    )
    add_config_flags(parser, _OLD_FLAGS, notes={
        "cadft_estimator": "Here the default is 'zscore' (the weights of loss_type='cadft'), 'none' is refused, "
        "and 'batch' weighs a file as 'ema' does (its rescale is per optimizer step).",
    })
    parser.set_defaults(cadft_estimator=defaults.NORMALIZATION)  # CADFT's weights, whatever the loss type
    parser.add_argument(
        "--normalizer", type=float, default=None,
        help="'ema'/'batch' only: m (> 0); default: the scored rows' own mean of c**beta.",
    )
    parser.add_argument("--top_k", type=int, default=10, help="Least compatible demonstrations to print (0: none).")
    parser.add_argument(
        "--tag_column", default=None, help="Column for per-tag means; default: 'kind' when the data has it."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    return parser


def _estimator_options(args: argparse.Namespace) -> dict:
    """The command's estimator flags as CADFTConfig fields (`cadft_normalizer`: a fixed m)."""
    return {**{field: getattr(args, field) for field in _OLD_FLAGS}, "cadft_normalizer": args.normalizer}


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("limit", "batch_size", "max_length", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if args.top_k < 0:
        parser.error(f"--top_k must be >= 0, got {args.top_k}")
    spelling = flag_names(args, _OLD_FLAGS)
    flag = lambda field: "--normalizer" if field == "cadft_normalizer" else spelling(field)  # noqa: E731
    if args.cadft_estimator == defaults.NO_WEIGHTS:
        parser.error(f"{flag('cadft_estimator')} none: cadft score shows CADFT's sample weights; choose "
                     f"{', '.join(defaults.NORMALIZATIONS)}")
    try:  # CADFTConfig's own check, in the command line's spelling of each field
        options = defaults.resolve_estimator_options(_estimator_options(args), flag)
    except defaults.ForeignOptions as e:
        parser.error(f"{', '.join(e.given)}: no meaning for {flag('cadft_estimator')} "
                     f"{args.cadft_estimator}; 'zscore' reads {flag('cadft_beta')} and {flag('cadft_eps')}, "
                     f"'ema'/'batch' read {flag('cadft_beta')}, --normalizer, {flag('cadft_w_min')} and "
                     f"{flag('cadft_w_max')}")
    except ValueError as e:
        parser.error(str(e))
    for field in _OLD_FLAGS:
        setattr(args, field, options[field])
    if Path(args.output).suffix.lower() not in OUTPUT_FORMATS:
        parser.error(f"--output must end in one of {', '.join(OUTPUT_FORMATS)}, got {args.output!r}")


# --------------------------------------------------------------------------- helpers


def _tag_columns(rows: list[dict]) -> list[str]:
    """Every scalar column that is not the demonstration itself or its id, in column order."""
    skip = (*_TEXT_COLUMNS, "sample_id")
    scalar = (str, int, float, bool, type(None))
    return [name for name in rows[0] if name not in skip and all(isinstance(r[name], scalar) for r in rows)]


def _tag_column(args: argparse.Namespace, tag_names: list[str]) -> str | None:
    """The column to group by: --tag_column, else 'kind' when the data has it."""
    if args.tag_column is None:
        return "kind" if "kind" in tag_names else None
    if args.tag_column not in tag_names:
        raise CommandError(
            f"--tag_column {args.tag_column!r} is not a scalar column of {args.dataset_path}; "
            f"its tag columns are: {', '.join(tag_names) or 'none'}"
        )
    return args.tag_column


def _completion_snippet(example: dict, width: int = _SNIPPET) -> str:
    """The start of the trained text of a demonstration, on one line."""
    if "completion" in example:
        text = example["completion"]
    elif "messages" in example:
        text = example["messages"][-1:]
    else:
        text = example.get("text", "")
    if isinstance(text, list):
        text = " ".join(str(message.get("content", "")) for message in text)
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


class Audit(NamedTuple):
    """The weights every scored row would get. Tensors are (N,), in input order."""

    compat: Any  # float32 compatibilities c = exp(-u), 0 where invalid
    u: Any  # float32 length-normalised NLL, 0 where invalid
    valid: Any  # bool, the row has a trainable token
    z: Any  # 'zscore': z relative to the whole file; else None
    raw: Any  # the weight before clipping ('zscore': the weight itself)
    weights: Any
    log_normalizer: float | None  # 'ema': log m; else None
    stats: dict  # the estimator's statistics over the valid rows, as floats

    def valid_indices(self) -> list[int]:
        return [i for i, ok in enumerate(self.valid.tolist()) if ok]

    @property
    def zscore(self) -> bool:
        return self.z is not None

    def reduced(self, i: int) -> bool:
        """Whether row i's weight is below what the base loss gives it: down-weighted
        ('zscore') or moved by the clip ('ema')."""
        return bool(self.weights[i] < 1) if self.zscore else bool(self.raw[i] != self.weights[i])


def _weights(scores: list[dict], args: argparse.Namespace) -> Audit:
    """The weights of `cadft.losses` at the command's estimator, computed in log space."""
    import torch

    from cadft.estimators import make_estimator

    valid = torch.tensor([s["num_tokens"] > 0 for s in scores])  # (N,)
    if not valid.any():
        raise CommandError("no demonstration has a trainable token (completions empty or cut by --max_length)")
    mean_logp = torch.tensor([s["mean_logprob"] if ok else 0.0 for s, ok in zip(scores, valid.tolist())],
                             dtype=torch.float32)
    u = -mean_logp
    compat = torch.where(valid, mean_logp.exp(), torch.zeros_like(mean_logp))
    # Only the chosen estimator's options: `args` may hold the other's (checked by `_check_args`)
    estimator = make_estimator(_estimator_options(args))
    weights, extras = estimator.weights(u, valid)  # over the whole file
    stats = estimator.set_stats(u, valid, weights, extras)
    return Audit(compat, u, valid, extras.get("z"), extras.get("raw_weight", weights), weights,
                 extras.get("log_normalizer"), stats)


def _records(ids, scores, audit: Audit, tags: dict[str, list]) -> list[dict]:
    raw, weights = audit.raw, audit.weights
    records = []
    for i, (sample_id, score) in enumerate(zip(ids, scores)):
        scored = score["num_tokens"] > 0  # a row with no trainable token gets nulls, never a made-up score
        record = {
            "sample_id": sample_id,
            "num_tokens": score["num_tokens"],
            "mean_logprob": score["mean_logprob"] if scored else None,
            "u": float(audit.u[i]) if scored else None,
            "compatibility": score["compatibility"] if scored else None,
        }
        if audit.zscore:
            record["z"] = float(audit.z[i]) if scored else None
            record["weight"] = float(weights[i]) if scored else None
        else:
            record["weight"] = float(weights[i]) if scored else None
            record["raw_weight"] = float(raw[i]) if scored else None
            record["clipped"] = bool(raw[i] != weights[i]) if scored else None
        records.append({**record, **{name: values[i] for name, values in tags.items()}})
    return records


def _write(records: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        from datasets import Dataset

        Dataset.from_list(records).to_parquet(str(path))
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _shade_points(audit: Audit, args: argparse.Namespace) -> tuple[float | None, float | None]:
    """Compatibilities below which the weight is reduced ('zscore': below 1, i.e. u above the
    file's mean; 'ema': clipped to w_min) and above which it is clipped to w_max (None: never)."""
    if args.cadft_beta == 0:
        return None, None
    if audit.zscore:
        return math.exp(-audit.stats["u_mean"]), None
    log_m = audit.log_normalizer
    low = math.exp((math.log(args.cadft_w_min) + log_m) / args.cadft_beta) if args.cadft_w_min > 0 else None
    high = math.exp(min((math.log(args.cadft_w_max) + log_m) / args.cadft_beta, 0.0))
    return low, (high if high < 1 else None)


def _bins(values: list[float]) -> tuple[float, int, int]:
    """(width, first, last) of histogram bins [k * width, (k + 1) * width) for k = first..last
    that cover `values` (in [0, 1]); c = 1 falls in the last bin below 1."""
    lo, hi = min(values), max(values)
    width = next((w for w in _BIN_WIDTHS if _bin(hi, w) - _bin(lo, w) < _MAX_BINS), _BIN_WIDTHS[-1])
    return width, _bin(lo, width), _bin(hi, width)


def _bin(value: float, width: float) -> int:
    # The epsilon keeps 0.3 / 0.05 = 5.999... in bin 6, where 0.3 belongs
    return min(math.floor(value / width + 1e-9), round(1 / width) - 1)


def _text_histogram(values: list[float]) -> tuple[float, list[str]]:
    """(bin width, lines) of a histogram of compatibilities, from the lowest bin to the highest."""
    width, first, last = _bins(values)
    counts = [0] * (last - first + 1)
    for v in values:
        counts[_bin(v, width) - first] += 1
    top = max(counts)
    digits = max(2, -math.floor(math.log10(width) + 1e-9))
    lines = []
    for k, count in enumerate(counts):
        low, high = (first + k) * width, (first + k + 1) * width
        bar = "#" * max(1, round(_BAR * count / top)) if count else ""
        close = "]" if first + k == round(1 / width) - 1 else ")"
        lines.append(f"  [{low:.{digits}f}, {high:.{digits}f}{close}  {bar:<{_BAR}}  {count}")
    return width, lines


def _tag_table(tag_name: str, tag_values: list, audit: Audit) -> list[str]:
    """Count, mean compatibility, mean weight and the fraction of reduced weights (down-weighted
    for 'zscore', clipped for 'ema') per tag value, least compatible first."""
    compat, weights = audit.compat, audit.weights
    groups: dict = {}
    for i in audit.valid_indices():
        groups.setdefault(tag_values[i], []).append(i)
    shown = sorted(groups, key=lambda v: -len(groups[v]))[:_MAX_TAG_VALUES]
    rows = []
    for value in shown:
        idx = groups[value]
        c = sum(float(compat[i]) for i in idx) / len(idx)
        w = sum(float(weights[i]) for i in idx) / len(idx)
        clipped = sum(audit.reduced(i) for i in idx) / len(idx)
        rows.append((str(value), len(idx), c, w, clipped))
    rows.sort(key=lambda r: r[2])  # least compatible tag first
    width = max(len(tag_name), *(len(r[0]) for r in rows))
    column = "w < 1" if audit.zscore else "clipped"
    lines = [f"  {tag_name:<{width}}  {'n':>5}  {'mean c':>7}  {'mean w':>7}  {column:>7}"]
    lines += [f"  {v:<{width}}  {n:>5}  {c:>7.4f}  {w:>7.3f}  {100 * f:>6.1f}%" for v, n, c, w, f in rows]
    if len(groups) > len(shown):
        lines.append(f"  ... {len(groups) - len(shown)} more values (the {_MAX_TAG_VALUES} most frequent shown)")
    return lines


def _plot(path: Path, compat_values: list[float], tag_name, tag_values, clip_points, title: str,
          low_label: str = "w = w_min") -> None:
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot global state

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    width, first, last = _bins(compat_values)
    width /= 2  # twice the text histogram's resolution, on the same grid
    bins = [(2 * first + k) * width for k in range(2 * (last - first + 1) + 1)]
    groups = sorted(set(tag_values), key=str) if tag_values is not None else []
    if 1 < len(groups) <= 8:
        data = [[c for c, t in zip(compat_values, tag_values) if t == g] for g in groups]
        ax.hist(data, bins=bins, stacked=True, label=[f"{tag_name}={g}" for g in groups])
    else:
        ax.hist(compat_values, bins=bins, color="tab:blue")
    # Shade where the weight is clipped, when that is in view
    x_min, x_max = bins[0], bins[-1]
    low, high = clip_points
    if low is not None and low > x_min:
        ax.axvspan(x_min, min(low, x_max), color="tab:red", alpha=0.12, label=low_label)
    if high is not None and high < x_max:
        ax.axvspan(max(high, x_min), x_max, color="tab:green", alpha=0.12, label="w = w_max")
    ax.set_xlim(x_min, x_max)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_xlabel("compatibility c = exp(mean token log-prob)")
    ax.set_ylabel("demonstrations")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------- main


def _weight_lines(args, audit: Audit, n_valid: int) -> list[str]:
    st = audit.stats
    low, high = _shade_points(audit, args)
    if audit.zscore:
        lines = [
            f"u (length-normalised NLL)  mean {st['u_mean']:.4f}  std {st['u_std']:.4f}",
            f"weights of the paper's estimator at beta={args.cadft_beta:g}, eps={args.cadft_eps:g}, with z relative to "
            f"the whole file (training z-scores each optimizer step's global batch instead): "
            f"mean {st['weight_mean']:.3f}, min {st['weight_min']:.3f}, "
            f"down-weighted {100 * st['downweighted_frac']:.1f}% of {n_valid}",
        ]
        if low is not None:
            lines.append(f"  w < 1 for u > {st['u_mean']:.4f} (c < {low:.4f}); "
                         f"w = 0.5 at z = {math.log(2) / args.cadft_beta:.3f}")
        return lines
    raw, weights = audit.raw, audit.weights
    valid_idx = audit.valid_indices()
    source = "given" if args.normalizer is not None else "dataset mean of c**beta"
    at_min = sum(bool(raw[i] < weights[i]) for i in valid_idx)
    at_max = sum(bool(raw[i] > weights[i]) for i in valid_idx)
    lines = [
        f"weights of the earlier estimator ({args.cadft_estimator}) at beta={args.cadft_beta:g}, "
        f"m={math.exp(audit.log_normalizer):.4g} (log m {audit.log_normalizer:.4f}, {source}), "
        f"w_min={args.cadft_w_min:g}, w_max={args.cadft_w_max:g}: mean {st['weight_mean']:.3f}, "
        f"ESS {st['weight_ess']:.1f}/{n_valid}, "
        f"clipped {100 * st['clip_frac']:.1f}% ({at_min} at w_min, {at_max} at w_max)"
    ]
    if args.cadft_beta > 0:
        lines.append(
            (f"  w = w_min for c < {low:.4g}" if low is not None else "  w never reaches w_min")
            + (f"; w = w_max for c > {high:.4f}" if high is not None else "; w never reaches w_max")
        )
    return lines


def _summary(args, dataset, scores: list[dict], audit: Audit, tag_column: str | None, scoring_s: float) -> list[str]:
    """The printed report: counts, quantiles, weights, histogram, least compatible, per tag."""
    import torch

    compat, weights = audit.compat, audit.weights
    valid_idx = audit.valid_indices()
    c_valid = [float(compat[i]) for i in valid_idx]
    n, n_valid = len(scores), len(valid_idx)
    lines = [
        f"scored {n} demonstrations of {args.dataset_path} under {args.model_name_or_path} "
        f"in {scoring_s:.1f}s ({n / scoring_s:.2f} samples/s)"
    ]
    if n_valid < n:
        lines.append(f"{n - n_valid} with no trainable token (empty, or cut by --max_length): left out of statistics")
    q = torch.tensor(QUANTILES, dtype=torch.float64) / 100
    quantiles = torch.quantile(torch.tensor(c_valid, dtype=torch.float64), q).tolist()
    lines.append("compatibility  " + "  ".join(f"p{k} {v:.4f}" for k, v in zip(QUANTILES, quantiles)))
    lines += _weight_lines(args, audit, n_valid)
    width, histogram = _text_histogram(c_valid)
    lines += ["", f"compatibility histogram (bins of {width:g})", *histogram]

    tag_values = dataset[tag_column] if tag_column else None
    if args.top_k:
        worst = sorted(valid_idx, key=lambda i: float(compat[i]))[: args.top_k]
        ids = dataset["sample_id"]
        tag_header = f"  {tag_column[:10]:<10}" if tag_column else ""
        lines += ["", f"{len(worst)} least compatible"]
        lines.append(f"  {'sample_id':>9}  {'c':>6}  {'w':>5}  {'tokens':>6}{tag_header}  completion")
        for i in worst:
            tag = f"  {str(tag_values[i])[:10]:<10}" if tag_column else ""
            lines.append(
                f"  {ids[i]:>9}  {float(compat[i]):.4f}  {float(weights[i]):>5.3f}  {scores[i]['num_tokens']:>6}{tag}  "
                f"{_completion_snippet(dataset[i])}"
            )
    if tag_column:
        lines += ["", f"by {tag_column}", *_tag_table(tag_column, tag_values, audit)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    # Data and model path first, light: a bad file is reported before torch is imported
    from cadft.data.loading import as_dataset, read_demonstrations

    table = read_demonstrations(args.dataset_path, limit=args.limit)
    tag_names = _tag_columns(table.rows)
    tag_column = _tag_column(args, tag_names)
    check_model_path(args.model_name_or_path)

    import torch
    from jinja2 import TemplateError

    from ..data.collate import SAMPLE_ID, with_sample_ids
    from ..model.loading import load_model_and_tokenizer
    from ..model.scoring import score_rows, tokenize_demonstration

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dataset = with_sample_ids(as_dataset(table.rows, table.source))
    try:
        model, tokenizer = load_model_and_tokenizer(args.model_name_or_path)
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot load model {args.model_name_or_path!r}: {e}") from e
    if torch.cuda.is_available():
        model.to("cuda")
    rows = []
    for i, example in enumerate(dataset):
        try:
            rows.append(tokenize_demonstration(tokenizer, example, max_length=args.max_length))
        except (ValueError, KeyError, TypeError, TemplateError) as e:
            # The model's chat template can refuse a conversation the checks let through
            raise table.error(i, f"cannot be tokenized by the model's chat template: {e}") from e

    started = time.perf_counter()
    scores = score_rows(model, rows, pad_token_id=tokenizer.pad_token_id, batch_size=args.batch_size)
    scoring_s = time.perf_counter() - started
    audit = _weights(scores, args)

    # Tag columns keep their names unless one collides with a score column
    renamed = [name for name in tag_names if name in _SCORE_COLUMNS]
    tags = {(f"data_{name}" if name in renamed else name): dataset[name] for name in tag_names}
    output = Path(args.output)
    _write(_records(dataset[SAMPLE_ID], scores, audit, tags), output)
    png = output.with_suffix(".png")
    valid_idx = audit.valid_indices()
    _plot(
        png,
        [float(audit.compat[i]) for i in valid_idx],
        tag_column,
        [dataset[tag_column][i] for i in valid_idx] if tag_column else None,
        _shade_points(audit, args),
        f"{len(valid_idx)} demonstrations of {Path(args.dataset_path).name} under {args.model_name_or_path}",
        low_label="w < 1 (u above the file's mean)" if audit.zscore else "w = w_min",
    )

    print("\n" + "\n".join(_summary(args, dataset, scores, audit, tag_column, scoring_s)))
    if renamed:
        print(f"\nnote: data column(s) {', '.join(renamed)} written as data_<name> (the name is a score column)")
    print(f"\nwrote {output} ({len(scores)} rows) and {png}")
    return 0
