"""`cadft report`: one self-contained HTML report from one or more run directories.

    cadft report cadft-output                                  # -> report.html
    cadft report out-nll out-dft out-cadft --output cmp.html --title "SFT vs DFT vs CADFT"

Several runs are overlaid, one colour per run, and compared in a summary table. The
file embeds its figures and loads nothing, so it can be mailed or opened offline.
See docs/report.md for what each section shows.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["make_parser", "main"]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadft report",
        description="Build one self-contained HTML report from one or more training run directories.",
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="A training output_dir (has trainer_state.json)."
    )
    parser.add_argument("--output", "-o", default="report.html", help="HTML file to write (default: report.html).")
    parser.add_argument("--title", default=None, help="Page title (default: 'CADFT report: <run labels>').")
    parser.add_argument(
        "--top-k", type=int, default=20, help="Rows of each run's most down-weighted demonstrations (default: 20)."
    )
    parser.add_argument(
        "--max-rewrites", type=int, default=500, help="Rows of each run's accepted-rewrites table (default: 500)."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top-k must be >= 1, got {args.top_k}")
    if args.max_rewrites < 0:
        parser.error(f"--max-rewrites must be >= 0, got {args.max_rewrites}")

    from ..report import ReportError, write_report  # matplotlib loads only when a report is built

    try:
        path = write_report(args.run_dirs, args.output, args.title, top_k=args.top_k, max_rewrites=args.max_rewrites)
    except ReportError as e:
        print(f"cadft report: error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(args.run_dirs)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
