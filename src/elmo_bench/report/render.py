"""Render the comparison as Markdown, CSV and a LaTeX tabular.

Layout, the same for any number of strategies: one line per (row, strategy), the baseline's line first. A line
holds the row (task, dataset, metric, model, train size), the strategy's own block (test mean ± std with n, run
seconds, trainable parameters) and its comparison with the baseline (Δ, winner, paired t-test, cost ratios),
empty on the baseline's own line and on every line of a row without a baseline run. With --select-on-dev a
"setting" column after the strategy names the setting chosen on dev. comparison.csv has the same lines, one per
(task, dataset, metric, model, train_size, strategy), under fixed column names; no name depends on a strategy.

Rows arrive sorted and every number has a fixed format, so the same runs always give byte-identical files.
"""
from __future__ import annotations

import csv
import io

from .references import PublishedFigure
from .select import Selection
from .table import BASELINE, SIGNIFICANCE_LEVEL, Comparison, PairedTest, Row, SideSummary

DASH = "—"
SIGNIFICANCE_RULE = (
    f"**Beyond seed noise** is decided by a paired t-test over seeds on the test scores "
    f"(`scipy.stats.ttest_rel`, each strategy vs {BASELINE}, runs paired by seed, two-sided, "
    f"p < {SIGNIFICANCE_LEVEL}); it needs at least 2 seeds run by both strategies."
)
SELECTION_RULE = (
    "**Settings chosen on dev** (`--select-on-dev`): each strategy ran several settings; per row and strategy "
    "the setting with the best mean **dev** score over seeds was kept (ties: the first in sorted order) and only "
    "its runs are in the table, so test was reported once, for the chosen setting, and never used to choose. "
    "A setting is named by the config keys that differ between that strategy's runs of the row."
)
# (header, LaTeX alignment); the setting column goes after "strategy" with --select-on-dev.
ROW_COLUMNS = (("task", "l"), ("dataset", "l"), ("metric", "l"), ("model", "l"), ("train size", "r"),
               ("strategy", "l"))
SETTING_COLUMN = ("setting (chosen on dev)", "l")
SIDE_COLUMNS = (("test (mean ± std, n)", "r"), ("run s", "r"), ("trainable params", "r"))
COMPARISON_COLUMNS = ((f"Δ vs {BASELINE}", "r"), ("winner", "l"), ("paired t-test over seeds", "l"),
                      ("run s ratio", "r"), ("params ratio", "r"))
ROW_KEY_CELLS = len(ROW_COLUMNS) - 1  # the cells that are the same on every line of one row


def columns(with_setting: bool) -> tuple[tuple[str, str], ...]:
    return ROW_COLUMNS + ((SETTING_COLUMN,) if with_setting else ()) + SIDE_COLUMNS + COMPARISON_COLUMNS


def format_score(side: SideSummary) -> str:
    std = DASH if side.test_std is None else f"{side.test_std:.2f}"
    return f"{side.test_mean:.2f} ± {std} (n={side.n})"


def format_significance(paired: PairedTest) -> str:
    if paired.n_pairs < 2:
        return "n/a (need ≥2 paired seeds)"
    if paired.p_value is None:
        return "n/a (identical paired scores)"
    verdict = "beyond seed noise" if paired.beyond_seed_noise else "within seed noise"
    return f"p={paired.p_value:.3g}, {verdict} ({paired.n_pairs} pairs)"


def format_setting(setting: str) -> str:
    return setting or "(one setting)"


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}×"


def _comparison_cells(row: Row, strategy: str) -> list[str]:
    comparison = row.comparison(strategy)
    if comparison is None:
        first = "(baseline)" if strategy == BASELINE else f"n/a (no {BASELINE} run)"
        return [first] + [DASH] * (len(COMPARISON_COLUMNS) - 1)
    return [f"{comparison.delta:+.2f}", comparison.winner, format_significance(comparison.paired),
            _ratio(comparison.seconds_ratio), _ratio(comparison.params_ratio)]


def table_lines(row: Row, with_setting: bool) -> list[list[str]]:
    """The lines of one row as shown in Markdown and LaTeX (plain text, escaped by the caller)."""
    key = [row.task, row.dataset, row.metric, row.model, str(row.train_size)]
    lines = []
    for strategy, side in row.sides.items():
        setting = [format_setting(side.setting or "")] if with_setting else []
        lines.append([*key, strategy, *setting, format_score(side), f"{side.train_seconds:.1f}",
                      f"{round(side.trainable_params):,d}", *_comparison_cells(row, strategy)])
    return lines


# ---------------------------------------------------------------------------------------------------- Markdown

def _md_line(cells) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown(rows: list[Row], n_runs: int, n_left_out: int, published: list[PublishedFigure] | None,
             figures: list[tuple[str, str]], selections: list[Selection] | None = None) -> str:
    """The whole comparison.md; `figures` holds (caption, path relative to the report folder); `selections`
    is given with --select-on-dev."""
    with_setting = selections is not None
    header = [name for name, _ in columns(with_setting)]
    lines = [
        *_markdown_intro(n_runs, n_left_out, selections),
        "## Measured results",
        "",
        _md_line(header),
        _md_line(["---"] * len(header)),
        *(_md_line(line) for row in rows for line in table_lines(row, with_setting)),
        "",
    ]
    if selections is not None:
        lines += _markdown_selections(selections)
    if published is not None:
        lines += _markdown_published(published)
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures:
            lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(lines)


def _markdown_intro(n_runs: int, n_left_out: int, selections: list[Selection] | None) -> list[str]:
    compared = "" if selections is None else (
        f" (the chosen settings, out of {sum(c.n for s in selections for c in s.candidates)} runs compared on dev)")
    return [
        f"# ELMo: strategies compared with {BASELINE}",
        "",
        f"Measured from {n_runs} complete runs{compared}"
        + (f" ({n_left_out} result files or folders left out; the warnings name them)." if n_left_out else "."),
        "One line per task, model, train size and strategy, the baseline's first. "
        "Scores are the task's main metric on the **test** split (×100): mean ± sample std (ddof=1) over seeds, "
        f"n = number of seeds; a std of — means a single seed. Δ = strategy − {BASELINE} of the means; "
        "the winner is the higher mean, or a tie when Δ rounds to 0.00. A row without a "
        f"{BASELINE} run shows each strategy's scores and no comparison. "
        "Cost is the mean wall time per run (training, plus computing the frozen biLM's features when they "
        f"were not already cached) and the trainable parameters; the ratios are strategy / {BASELINE}.",
        "",
        SIGNIFICANCE_RULE,
        "",
        *([] if selections is None else [SELECTION_RULE, ""]),
    ]


def _markdown_selections(selections: list[Selection]) -> list[str]:
    header = ("task", "dataset", "metric", "model", "train size", "strategy", "setting", "seeds", "dev mean",
              "kept")
    lines = ["## Settings compared on dev", "", _md_line(header), _md_line(["---"] * len(header))]
    for selection in selections:
        task, dataset, metric, model, train_size = selection.row_key
        lines += [_md_line([task, dataset, metric, model, str(train_size), selection.strategy,
                            format_setting(candidate.setting), str(candidate.n), f"{candidate.dev_mean:.2f}",
                            "kept" if candidate == selection.chosen else ""])
                  for candidate in selection.candidates]
    return lines + [""]


def _markdown_published(published: list[PublishedFigure]) -> list[str]:
    lines = ["## Published figures (not measured here)", "",
             "Quoted for context from other task models trained on full data; never part of the means above.", ""]
    if not published:
        return lines + ["No published ELMo figure is on file for the measured tasks.", ""]
    header = ("task", "dataset", "system", "split", "metric", "published figure", "source")
    lines += [_md_line(header), _md_line(["---"] * len(header))]
    lines += [_md_line([f.task, f.dataset, f.system, f.split, f.metric, f.figure, f.citation]) for f in published]
    return lines + [""]


# ---------------------------------------------------------------------------------------------------- CSV

CSV_ROW_FIELDS = ("task", "dataset", "metric", "model", "train_size", "strategy", "setting")
CSV_SIDE_FIELDS = ("n", "test_mean", "test_std", "dev_mean", "train_seconds", "trainable_params")
CSV_COMPARISON_FIELDS = ("baseline", "delta_test", "winner", "paired_seeds", "p_value", "beyond_seed_noise",
                         "train_seconds_ratio", "trainable_params_ratio")


def _blank_or(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _csv_side(side: SideSummary) -> list[str]:
    return [str(side.n), f"{side.test_mean:.4f}", _blank_or(side.test_std, ".4f"), f"{side.dev_mean:.4f}",
            f"{side.train_seconds:.2f}", str(round(side.trainable_params))]


def _csv_comparison(comparison: Comparison | None) -> list[str]:
    if comparison is None:
        return [""] * len(CSV_COMPARISON_FIELDS)
    noise = comparison.paired.beyond_seed_noise
    return [comparison.baseline, f"{comparison.delta:.4f}", comparison.winner, str(comparison.paired.n_pairs),
            _blank_or(comparison.paired.p_value, ".6g"), "" if noise is None else str(noise).lower(),
            _blank_or(comparison.seconds_ratio, ".4f"), _blank_or(comparison.params_ratio, ".4f")]


def csv_text(rows: list[Row]) -> str:
    """comparison.csv: machine-readable, with dev means too; missing values are empty, and so is the setting
    without --select-on-dev."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_ROW_FIELDS + CSV_SIDE_FIELDS + CSV_COMPARISON_FIELDS)
    for row in rows:
        for strategy, side in row.sides.items():
            setting = "" if side.setting is None else format_setting(side.setting)
            writer.writerow([row.task, row.dataset, row.metric, row.model, row.train_size, strategy, setting,
                             *_csv_side(side), *_csv_comparison(row.comparison(strategy))])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- LaTeX

_LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # The few non-ASCII symbols the table uses, so the file compiles with pdflatex and no extra packages.
    "±": r"$\pm$", "—": "---", "−": "$-$", "Δ": r"$\Delta$", "≥": r"$\geq$", "×": r"$\times$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_REPLACEMENTS.get(char, char) for char in text)


def _latex_line(cells) -> str:
    return " & ".join(latex_escape(cell) for cell in cells) + r" \\"


def _latex_body(rows: list[Row], with_setting: bool) -> list[str]:
    """Rows apart by a rule; a row's task to train size printed once, on its first line, as a paper table would."""
    body: list[str] = []
    for row in rows:
        lines = table_lines(row, with_setting)
        body += [r"\hline"] if body else []
        body += [_latex_line(line if index == 0 else [""] * ROW_KEY_CELLS + line[ROW_KEY_CELLS:])
                 for index, line in enumerate(lines)]
    return body


def latex(rows: list[Row], with_setting: bool = False) -> str:
    """comparison.tex: the measured table as a tabular to \\input into a paper."""
    table_columns = columns(with_setting)
    return "\n".join([
        f"% elmo-bench: each strategy vs {BASELINE}, test scores (mean +/- sample std over seeds).",
        "% Beyond seed noise: paired t-test over seeds on test scores, p < 0.05."
        + (" Settings chosen on dev; test reported once." if with_setting else ""),
        rf"\begin{{tabular}}{{{''.join(align for _, align in table_columns)}}}",
        r"\hline",
        _latex_line([name for name, _ in table_columns]),
        r"\hline",
        *_latex_body(rows, with_setting),
        r"\hline",
        r"\end{tabular}",
        "",
    ])
