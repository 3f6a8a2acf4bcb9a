"""build_report: result files and their test predictions on disk → comparison.md, comparison.csv,
intervals.csv, comparison.tex, headline.md and figures/*.png."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import figures, render
from .arms import ArmSplit, split_arm
from .load import RunResult, keep_newest_per_cell, load_runs
from .probes import load_probes, markdown_probes
from .references import published_for
from .select import Selection, keep_best_on_dev
from .bootstrap import RESAMPLES, Crossover
from .table import Row, build_rows, crossovers


class NoResultsError(RuntimeError):
    """No complete result.json was found under any of the folders."""


@dataclass(frozen=True)
class Report:
    out_dir: Path
    runs: list[RunResult]  # the complete runs used, one per cell (of the chosen setting, with select_on_dev)
    rows: list[Row]
    crossovers: dict[tuple, Crossover]  # (task, dataset, metric, model, strategy) -> where it overtakes the baseline
    selections: list[Selection] | None  # per row and strategy, the settings compared on dev; None without it
    left_out: list[str]  # one message per file or folder left out (also issued as a ResultFileWarning)
    files: list[Path]  # everything written


def build_report(run_dirs: list[Path], out_dir: Path, references: bool = True,
                 select_on_dev: bool = False, resamples: int = RESAMPLES,
                 aa_arms: tuple[ArmSplit, ...] = ()) -> Report:
    """Read every result.json under `run_dirs` (recursively) and write the report into `out_dir`.

    With `select_on_dev`, runs of one cell at several settings (a tuning sweep) are not duplicates: each row and
    strategy keeps the setting with the best mean dev score (see select.py). Without it the newest run of a
    cell is kept. Each of `aa_arms` makes some seeds of the baseline a second arm (arms.py: an A/A check)."""
    run_dirs = [Path(folder) for folder in run_dirs]
    out_dir = Path(out_dir)
    runs, left_out = load_runs(run_dirs)
    for split in aa_arms:
        runs = split_arm(runs, split)
    if not runs:
        folders = ", ".join(str(folder) for folder in run_dirs)
        raise NoResultsError(f"no complete result.json found under {folders}; nothing to report")
    selections = None
    if select_on_dev:
        runs, selections = keep_best_on_dev(runs, left_out)
    else:
        runs = keep_newest_per_cell(runs, left_out)
    rows = build_rows(runs, resamples)
    found = crossovers(rows)
    layer_table = markdown_probes(load_probes(run_dirs, left_out), runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = figures.draw_all(runs, rows, out_dir / "figures")
    published = published_for({run.task for run in runs}) if references else None
    texts = {
        "comparison.md": render.markdown(rows, found, layer_table, len(runs), len(left_out), published,
                                         [(caption, path.relative_to(out_dir).as_posix()) for caption, path in drawn],
                                         selections, resamples),
        "comparison.csv": render.csv_text(rows),
        "intervals.csv": render.intervals_csv(rows),
        "comparison.tex": render.latex(rows, with_setting=select_on_dev),
        "headline.md": render.headline_block(rows),
    }
    for name, text in texts.items():
        (out_dir / name).write_text(text, encoding="utf-8", newline="\n")
    written = [out_dir / name for name in texts] + [path for _, path in drawn]
    return Report(out_dir=out_dir, runs=runs, rows=rows, crossovers=found, selections=selections, left_out=left_out,
                  files=written)
