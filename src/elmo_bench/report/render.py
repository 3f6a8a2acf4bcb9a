"""Render the comparison as Markdown, CSV and a LaTeX tabular.

Rows arrive sorted and every number has a fixed format, so the same runs always give byte-identical files.
"""
from __future__ import annotations

import csv
import io

from .references import PublishedFigure
from .table import SIGNIFICANCE_LEVEL, PairedTest, Row, SideSummary

DASH = "—"
SIGNIFICANCE_RULE = (
    f"**Beyond seed noise** is decided by a paired t-test over seeds on the test scores "
    f"(`scipy.stats.ttest_rel`, finetune vs feature_ensemble runs paired by seed, two-sided, "
    f"p < {SIGNIFICANCE_LEVEL}); it needs at least 2 seeds run by both strategies."
)
COLUMNS = ("task", "dataset", "metric", "model", "train size", "feature_ensemble (test)", "finetune (test)",
           "Δ (ft − fe)", "winner", "paired t-test over seeds", "run s (fe / ft)",
           "trainable params (fe / ft)", "params ratio ft/fe")
LATEX_ALIGN = "llllrrrrllrrr"  # one letter per column above


def format_score(side: SideSummary | None) -> str:
    if side is None:
        return DASH
    std = DASH if side.test_std is None else f"{side.test_std:.2f}"
    return f"{side.test_mean:.2f} ± {std} (n={side.n})"


def format_significance(paired: PairedTest) -> str:
    if paired.n_pairs < 2:
        return "n/a (need ≥2 paired seeds)"
    if paired.p_value is None:
        return "n/a (identical paired scores)"
    verdict = "beyond seed noise" if paired.beyond_seed_noise else "within seed noise"
    return f"p={paired.p_value:.3g}, {verdict} ({paired.n_pairs} pairs)"


def _or_dash(value: float | None, spec: str) -> str:
    return DASH if value is None else format(value, spec)


def _seconds(side: SideSummary | None) -> str:
    return DASH if side is None else f"{side.train_seconds:.1f}"


def _params(side: SideSummary | None) -> str:
    return DASH if side is None else f"{round(side.trainable_params):,d}"


def table_cells(row: Row) -> list[str]:
    """The cells of one row as shown in Markdown and LaTeX (plain text, escaped by the caller)."""
    fe, ft = row.feature_ensemble, row.finetune
    ratio = _or_dash(row.params_ratio, ".2f")
    return [row.task, row.dataset, row.metric, row.model, str(row.train_size), format_score(fe), format_score(ft),
            _or_dash(row.delta, "+.2f"), row.winner or DASH, format_significance(row.paired),
            f"{_seconds(fe)} / {_seconds(ft)}", f"{_params(fe)} / {_params(ft)}",
            ratio if row.params_ratio is None else f"{ratio}×"]


# ---------------------------------------------------------------------------------------------------- Markdown

def _md_line(cells) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown(rows: list[Row], n_runs: int, n_left_out: int, published: list[PublishedFigure] | None,
             figures: list[tuple[str, str]]) -> str:
    """The whole comparison.md; `figures` holds (caption, path relative to the report folder)."""
    lines = [
        "# ELMo: feature ensemble vs fine-tuning",
        "",
        f"Measured from {n_runs} complete runs"
        + (f" ({n_left_out} result files or folders left out; the warnings name them)." if n_left_out else "."),
        "Scores are the task's main metric on the **test** split (×100): mean ± sample std (ddof=1) over seeds, "
        "n = number of seeds; a std of — means a single seed. Δ = finetune − feature_ensemble of the means; "
        "the winner is the higher mean, or a tie when Δ rounds to 0.00. A cell of — has no runs. "
        "Cost is the mean wall time per run (training, plus computing the frozen biLM's features when they "
        "were not already cached) and the trainable parameters of each strategy.",
        "",
        SIGNIFICANCE_RULE,
        "",
        "## Measured results",
        "",
        _md_line(COLUMNS),
        _md_line(["---"] * len(COLUMNS)),
        *(_md_line(table_cells(row)) for row in rows),
        "",
    ]
    if published is not None:
        lines += _markdown_published(published)
    if figures:
        lines += ["## Figures", ""]
        for caption, path in figures:
            lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(lines)


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

CSV_SIDE_FIELDS = ("n", "test_mean", "test_std", "dev_mean", "train_seconds", "trainable_params")


def _csv_side(side: SideSummary | None) -> list[str]:
    if side is None:
        return [""] * len(CSV_SIDE_FIELDS)
    return [str(side.n), f"{side.test_mean:.4f}", "" if side.test_std is None else f"{side.test_std:.4f}",
            f"{side.dev_mean:.4f}", f"{side.train_seconds:.2f}", str(round(side.trainable_params))]


def _blank_or(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def csv_text(rows: list[Row]) -> str:
    """comparison.csv: machine-readable, with dev means too; missing values are empty."""
    header = ["task", "dataset", "metric", "model", "train_size",
              *(f"{strategy}_{field}" for strategy in ("feature_ensemble", "finetune") for field in CSV_SIDE_FIELDS),
              "delta_test", "winner", "paired_seeds", "p_value", "beyond_seed_noise",
              "train_seconds_ratio", "trainable_params_ratio"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        noise = row.paired.beyond_seed_noise
        writer.writerow([row.task, row.dataset, row.metric, row.model, row.train_size,
                         *_csv_side(row.feature_ensemble), *_csv_side(row.finetune),
                         _blank_or(row.delta, ".4f"), row.winner or "", row.paired.n_pairs,
                         _blank_or(row.paired.p_value, ".6g"), "" if noise is None else str(noise).lower(),
                         _blank_or(row.seconds_ratio, ".4f"), _blank_or(row.params_ratio, ".4f")])
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


def latex(rows: list[Row]) -> str:
    """comparison.tex: the measured table as a tabular to \\input into a paper."""
    return "\n".join([
        "% elmo-bench: feature_ensemble vs finetune, test scores (mean +/- sample std over seeds).",
        "% Beyond seed noise: paired t-test over seeds on test scores, p < 0.05.",
        rf"\begin{{tabular}}{{{LATEX_ALIGN}}}",
        r"\hline",
        _latex_line(COLUMNS),
        r"\hline",
        *(_latex_line(table_cells(row)) for row in rows),
        r"\hline",
        r"\end{tabular}",
        "",
    ])
