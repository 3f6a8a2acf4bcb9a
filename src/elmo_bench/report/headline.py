"""The README's headline block: a report's headline.md, kept between two markers in the README.

    python -m elmo_bench.report.headline README.md results/study_converge/report          # exit 1 if they differ
    python -m elmo_bench.report.headline README.md results/study_converge/report --write  # copy the report's in

A README says only what its report's tests support when its block is the report's own (render.headline_block);
`readme_mismatch` is the check a test calls.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .render import HEADLINE_END, HEADLINE_START

HEADLINE_FILE = "headline.md"


def block_of(text: str, source: str) -> str:
    """The block from its start marker to its end marker, both included; `source` names the file in errors."""
    start, end = text.find(HEADLINE_START), text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ValueError(f"{source}: no {HEADLINE_START} ... {HEADLINE_END} block")
    return text[start:end + len(HEADLINE_END)]


def readme_mismatch(readme: Path, report_dir: Path) -> str | None:
    """None where the README's block is the report's headline.md; else what differs, naming both files."""
    ours = block_of(readme.read_text(encoding="utf-8"), str(readme))
    theirs = block_of((report_dir / HEADLINE_FILE).read_text(encoding="utf-8"), str(report_dir / HEADLINE_FILE))
    if ours == theirs:
        return None
    first = next((number for number, (a, b) in enumerate(zip(ours.splitlines(), theirs.splitlines()), start=1)
                  if a != b), min(len(ours.splitlines()), len(theirs.splitlines())) + 1)
    return (f"{readme}: the headline block differs from {report_dir / HEADLINE_FILE} from its line {first} on; "
            f"run python -m elmo_bench.report.headline {readme} {report_dir} --write")


def with_block(readme_text: str, block: str, source: str) -> str:
    """The README's text with its block replaced by `block`."""
    old = block_of(readme_text, source)
    return readme_text.replace(old, block, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("readme", type=Path)
    parser.add_argument("report", type=Path, help="the report folder holding headline.md")
    parser.add_argument("--write", action="store_true", help="replace the README's block with the report's")
    args = parser.parse_args(argv)
    if args.write:
        block = block_of((args.report / HEADLINE_FILE).read_text(encoding="utf-8"), str(args.report / HEADLINE_FILE))
        text = args.readme.read_text(encoding="utf-8")
        args.readme.write_text(with_block(text, block, str(args.readme)), encoding="utf-8")
        return 0
    mismatch = readme_mismatch(args.readme, args.report)
    if mismatch:
        print(mismatch, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
