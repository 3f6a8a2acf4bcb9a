"""elmo-bench-report: write the comparison report for one or more folders of runs."""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

from .arms import parse_arm_split
from .bootstrap import RESAMPLES
from .build import NoResultsError, build_report
from .table import BaselineError

EXIT_NO_RESULTS = 2


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="elmo-bench-report",
        description="Compare every strategy's runs with the baseline's (feature_ensemble, as the runs record it): "
                    "tables (md, csv, tex) and figures (png).")
    parser.add_argument("folders", nargs="*", default=["outputs"],
                        help="folders searched recursively for result.json (default: outputs)")
    parser.add_argument("--out", help="report folder (default: <first folder>/report)")
    parser.add_argument("--no-references", action="store_true",
                        help="leave out the table of published figures")
    parser.add_argument("--select-on-dev", action="store_true",
                        help="for a tuning sweep (one output_dir per setting): per task, model, train size and "
                             "strategy keep only the setting with the best mean dev score over seeds, and name it "
                             "in the table; without it, runs of one cell at several settings are duplicates and "
                             "the newest is kept")
    parser.add_argument("--resamples", type=_positive, default=RESAMPLES,
                        help=f"bootstrap resamples for the intervals (default: {RESAMPLES})")
    parser.add_argument("--aa-arm", action="append", default=[], type=_arm_split, metavar="STRATEGY:SEEDS:PAIRED",
                        help="an A/A check: the baseline's runs at SEEDS become the arm STRATEGY_rerun, renumbered "
                             "in order onto PAIRED and compared with the baseline's runs there, e.g. "
                             "feature_ensemble:6-10:1-5 (docs/statistics.md); repeatable")
    return parser.parse_args(argv)


def _arm_split(text: str):
    try:
        return parse_arm_split(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 100:
        raise argparse.ArgumentTypeError(f"--resamples must be at least 100, got {value}")
    return value


def unwritable(folder: Path) -> str | None:
    """Why the report cannot be written into `folder` (checked before any work, leaving nothing behind), or None."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder" + (f" (on the way to {folder})" if existing != folder else "")
    try:
        tempfile.TemporaryFile(dir=existing).close()  # permissions, a read-only file system: what writing meets
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror})"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    folders = [Path(folder) for folder in args.folders]
    out_dir = Path(args.out) if args.out else folders[0] / "report"
    if (problem := unwritable(out_dir)) is not None:
        print(f"elmo-bench-report: --out {out_dir}: {problem}", file=sys.stderr)
        return EXIT_NO_RESULTS
    # Record warnings to print them as plain lines instead of Python's source-location format.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = build_report(folders, out_dir, references=not args.no_references,
                                  select_on_dev=args.select_on_dev, resamples=args.resamples,
                                  aa_arms=tuple(args.aa_arm))
        except (NoResultsError, BaselineError) as err:
            report = None
            message = str(err)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if report is None:
        print(f"elmo-bench-report: {message}", file=sys.stderr)
        return EXIT_NO_RESULTS
    print(f"wrote {out_dir / 'comparison.md'}: {len(report.rows)} rows from {len(report.runs)} runs"
          + (f", {len(report.left_out)} left out" if report.left_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
