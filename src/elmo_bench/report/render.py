"""Render the comparison as Markdown, CSV and a LaTeX tabular.

Layout, the same for any number of strategies: one line per (row, strategy), the baseline's line first. A line
holds the row (task, dataset, metric, model, train size), the strategy's own block (test mean ± std with n, cost)
and its comparison with the baseline (Δ with its 95% interval, Holm-adjusted p, verdict, pairs, cost ratios),
empty on the baseline's own line and on every line of a row without a baseline run. With --select-on-dev a
"setting" column after the strategy names the setting chosen on dev. comparison.csv has the same lines under
fixed column names; intervals.csv has every metric's interval. Sections after the table: every metric, the
crossover sizes, the decision guide (guide.py), what had no interval, published figures and the figures.

Rows arrive sorted and every number has a fixed format, so the same runs always give byte-identical files.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass

from .bootstrap import RESAMPLES, Crossover, Interval
from .formats import DASH, LEVEL, format_crossover, format_interval
from .guide import decision_guide, headline
from .references import PublishedFigure
from .select import Selection
from .table import (HOST_SPEED_TOLERANCE, MIN_SEEDS_FOR_VERDICT, SIGNIFICANCE_LEVEL, Comparison, Row, SideSummary,
                    report_baseline)


def statistics_rule(resamples: int, baseline: str) -> str:
    """How Δ, its interval and the verdict are made, naming the resample count the report used."""
    return (
        f"**Δ and its {LEVEL} interval.** Δ = strategy − {baseline}, the mean over the seeds both ran of their "
        "paired test-score differences. The interval and p come from a t on the seeds' differences: SE² = s²/K "
        "(their variance over the K seeds: training runs and each run's own test-set noise) + the test set's "
        "share that every seed has in common, which does not average out over seeds; df by Satterthwaite, at most "
        "K − 1. That shared share is read off a bootstrap over the test set's units "
        f"({resamples:,d} resamples; sentences for tagging, examples for classification, pairs for sentence pairs, "
        "whole articles for span QA; the same draw of units for every seed and both arms, each metric recomputed "
        "on the drawn units). The procedure was chosen by its false-positive rate and power on simulated studies "
        "matched to a study's rows (`benchmarks/calibrate_verdicts.py`, `docs/statistics.md`). "
        f"**Multiple comparisons:** the p-values of all comparisons in this report with at least "
        f"{MIN_SEEDS_FOR_VERDICT} paired seeds are adjusted by Holm's method (with one seed there is no verdict); "
        f"the verdict names a winner only when the adjusted p < {SIGNIFICANCE_LEVEL}, and reads *not resolved* "
        "otherwise (*only before Holm* when the unadjusted interval excludes 0). **MDE**: the difference this "
        "comparison would find with 80% power at Holm's first-step level (0.05 / the number of comparisons), for "
        "its SE and df; a *not resolved* row does not exclude differences below it. More seeds shrink it "
        "(`scripts/plan_seeds.py`)."
    )


PAIRS_RULE = (
    "**Pairs.** The runs of one seed are compared only when they trained on the same subset of the same data "
    "(digests of the examples), with the same head, trainer budget (epochs, update floor and cap, evaluation "
    "interval, patience, batch size) and encoder, and were scored on the same test set; any other pair is left out "
    "and the pairs column says what differed."
)
COST_RULE = (
    "**Cost.** *train s*: mean wall time per run of training and of scoring dev during training (runs that did not "
    "record the scoring: training only). *features s*: computing the frozen "
    "encoder's features the run used, one-off (what one run alone on a clean cache pays; recorded in each cache "
    "file, so it does not depend on which run came first) / amortised (that cost shared among all runs of this "
    "report that used the same features). The run s ratio compares training + one-off features."
)
HOST_SPEED_RULE = (
    " *host-adjusted*: each run timed a fixed reference workload (an LSTM's forward and backward pass, "
    "`elmo_bench/host_speed.py`; CPU time on a CPU) at its start and end on its own device and threads; where the "
    f"two strategies' mean timings lie more than {HOST_SPEED_TOLERANCE}× apart (a different or slower host), their "
    "seconds are not comparable as they stand, and the ratio divided by that factor follows the raw one. The "
    "headline and the decision guide use it."
)
DEVICE_RULE = (
    f" A run s ratio of {DASH} means the two strategies' runs trained on different device types (CPU and GPU): "
    "their seconds measure the hardware, not the strategy."
)
SELECTION_RULE = (
    "**Settings chosen on dev** (`--select-on-dev`): each strategy ran several settings; per row and strategy "
    "the setting with the best mean **dev** score over seeds was kept (ties: the first in sorted order) and only "
    "its runs are in the table, so test was reported once, for the chosen setting, and never used to choose. "
    "A setting is named by the config keys that differ between that strategy's runs of the row."
)
# (header, LaTeX alignment); the setting column goes after "strategy" with --select-on-dev.
ROW_COLUMNS = (("task", "l"), ("dataset", "l"), ("metric", "l"), ("encoder", "l"), ("train size", "r"),
               ("strategy", "l"))
SETTING_COLUMN = ("setting (chosen on dev)", "l")
SIDE_COLUMNS = (("test (mean ± std, n)", "r"), ("train s", "r"), ("features s (one-off / amortised)", "r"),
                ("trainable params", "r"))
COMPARISON_COLUMNS = (("p (Holm)", "l"), ("verdict", "l"), ("MDE 80% (Holm)", "r"), ("pairs", "l"),
                      ("run s ratio", "r"), ("params ratio", "r"))  # after the Δ's column, which names the baseline


def comparison_columns(baseline: str) -> tuple[tuple[str, str], ...]:
    return ((f"Δ vs {baseline} [{LEVEL} CI]", "r"), *COMPARISON_COLUMNS)
ROW_KEY_CELLS = len(ROW_COLUMNS) - 1  # the cells that are the same on every line of one row


@dataclass(frozen=True)
class Layout:
    """The columns that depend on the runs: the chosen setting (--select-on-dev) and one per extra test set."""

    with_setting: bool
    extra_tests: tuple[str, ...]
    baseline: str

    @classmethod
    def of(cls, rows: list[Row], with_setting: bool) -> Layout:
        return cls(with_setting, tuple(sorted({name for row in rows for side in row.sides.values()
                                               for name in side.extra_tests})), report_baseline(rows))


def columns(layout: Layout) -> tuple[tuple[str, str], ...]:
    extra = tuple((f"extra test {name} (mean, n)", "r") for name in layout.extra_tests)
    return (ROW_COLUMNS + ((SETTING_COLUMN,) if layout.with_setting else ()) + SIDE_COLUMNS[:1] + extra
            + SIDE_COLUMNS[1:] + comparison_columns(layout.baseline))


def format_extra(side: SideSummary, name: str) -> str:
    if name not in side.extra_tests:
        return DASH
    mean, seeds = side.extra_tests[name]
    return f"{mean:.2f} (n={seeds})"


def format_score(side: SideSummary) -> str:
    std = DASH if side.test_std is None else f"{side.test_std:.2f}"
    return f"{side.test_mean:.2f} ± {std} (n={side.n})"


def format_delta(comparison: Comparison) -> str:
    if comparison.main is not None:
        return format_interval(comparison.main)
    return DASH if comparison.delta is None else f"{comparison.delta:+.2f} (no interval)"


def format_p(comparison: Comparison) -> str:
    if comparison.main is None or comparison.p_adjusted is None:
        return DASH
    return f"{comparison.main.p_value:.3g} ({comparison.p_adjusted:.3g})"


def format_pairs(comparison: Comparison) -> str:
    return "; ".join([str(comparison.pairs), *comparison.left_out])


def format_setting(setting: str) -> str:
    return setting or "(one setting)"


def format_seconds(side: SideSummary) -> str:
    return f"{side.feature_seconds:.1f} / {side.feature_seconds_amortised:.1f}"


def _ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}×"


def _comparison_cells(row: Row, strategy: str) -> list[str]:
    comparison = row.comparison(strategy)
    if comparison is None:
        first = "(baseline)" if strategy == row.baseline else f"n/a (no {row.baseline} run)"
        return [first] + [DASH] * len(COMPARISON_COLUMNS)
    return [format_delta(comparison), format_p(comparison), comparison.verdict, _points(comparison.mde),
            format_pairs(comparison), _seconds_ratio(comparison), _ratio(comparison.params_ratio)]


def _points(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _seconds_ratio(comparison: Comparison) -> str:
    if comparison.host_adjusted_ratio is None:
        return _ratio(comparison.seconds_ratio)
    return f"{_ratio(comparison.seconds_ratio)} ({_ratio(comparison.host_adjusted_ratio)} host-adjusted)"


def table_lines(row: Row, layout: Layout) -> list[list[str]]:
    """The lines of one row as shown in Markdown and LaTeX (plain text, escaped by the caller)."""
    key = [row.task, row.dataset, row.metric, row.model, str(row.train_size)]
    lines = []
    for strategy, side in row.sides.items():
        setting = [format_setting(side.setting or "")] if layout.with_setting else []
        extra = [format_extra(side, name) for name in layout.extra_tests]
        lines.append([*key, strategy, *setting, format_score(side), *extra, f"{side.train_seconds:.1f}",
                      format_seconds(side), f"{round(side.trainable_params):,d}", *_comparison_cells(row, strategy)])
    return lines


# ---------------------------------------------------------------------------------------------------- Markdown

def _md_line(cells) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown(rows: list[Row], crossovers: dict[tuple, Crossover], layer_table: list[str], n_runs: int,
             n_left_out: int, published: list[PublishedFigure] | None, figures: list[tuple[str, str]],
             selections: list[Selection] | None = None, resamples: int = RESAMPLES) -> str:
    """The whole comparison.md; `layer_table` holds the probe section's lines (probes.py), `figures`
    (caption, path relative to the report folder); `selections` is given with --select-on-dev; `resamples`
    is the bootstrap's resample count, which the text states."""
    layout = Layout.of(rows, with_setting=selections is not None)
    header = [name for name, _ in columns(layout)]
    lines = [
        *_markdown_intro(n_runs, n_left_out, selections, resamples, _cost_rule(rows), layout.baseline),
        *_markdown_headline(rows),
        "## Measured results",
        "",
        _md_line(header),
        _md_line(["---"] * len(header)),
        *(_md_line(line) for row in rows for line in table_lines(row, layout)),
        "",
        *_markdown_encoders(rows),
        *_markdown_every_metric(rows),
        *_markdown_crossovers(crossovers, layout.baseline),
        *decision_guide(rows, crossovers),
        *_markdown_class_movers(rows),
        *layer_table,
        *_markdown_without_interval(rows),
        *_markdown_still_improving(rows),
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


def any_host_adjusted(rows: list[Row]) -> bool:
    """Whether any comparison's cost ratio had to be levelled for its runs' hosts (HOST_SPEED_RULE)."""
    return any(c.host_adjusted_ratio is not None for row in rows for c in row.comparisons.values())


def _cost_rule(rows: list[Row]) -> str:
    """COST_RULE, with the notes on host levelling and on mixed devices where some comparison needs them."""
    devices_differ = any(c.devices_differ for row in rows for c in row.comparisons.values())
    return COST_RULE + (HOST_SPEED_RULE if any_host_adjusted(rows) else "") + (DEVICE_RULE if devices_differ else "")


def _markdown_intro(n_runs: int, n_left_out: int, selections: list[Selection] | None, resamples: int,
                    cost_rule: str, baseline: str) -> list[str]:
    compared = "" if selections is None else (
        f" (the chosen settings, out of {sum(c.n for s in selections for c in s.candidates)} runs compared on dev)")
    return [
        f"# Strategies compared with {baseline}",
        "",
        f"Measured from {n_runs} complete runs{compared}"
        + (f" ({n_left_out} result files or folders left out; the warnings name them)." if n_left_out else "."),
        "One line per task, encoder, train size and strategy, the baseline's first. "
        "Scores are the task's main metric on the **test** split (×100): mean ± sample std (ddof=1) over seeds, "
        "n = number of seeds; a std of — means a single seed. A row without a "
        f"{baseline} run shows each strategy's scores and no comparison. Extra test sets (`task.extra_test`, "
        "e.g. out of domain) get a column each (the main metric, mean over seeds), and their Δ with its interval "
        "in *Every metric of the task* (descriptive, not adjusted).",
        "",
        statistics_rule(resamples, baseline),
        "",
        PAIRS_RULE,
        "",
        cost_rule,
        "",
        *([] if selections is None else [SELECTION_RULE, ""]),
    ]


def _markdown_headline(rows: list[Row]) -> list[str]:
    return ["## Headline", "", *headline_lines(rows), ""]


HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"


def headline_lines(rows: list[Row]) -> list[str]:
    """The headline's legend and table, the same in comparison.md and in headline.md (the README's block)."""
    header, lines = headline(rows)
    return [f"Per task and encoder, by the rule of the decision guide below: **bold** where the Holm-adjusted "
            f"test shows a strategy better than {report_baseline(rows)} (its Δ [95% CI] and run-time ratio follow); elsewhere "
            f"none is shown better, the cheapest strategy not shown worse is named (a choice by cost, not a shown "
            f"tie) with the best other strategy's Δ, and differences below the row's minimum detectable effect "
            f"are not excluded; a strategy shown worse is named after a semicolon.", "",
            _md_line(header), _md_line(["---"] * len(header)), *(_md_line(line) for line in lines)]


def headline_block(rows: list[Row]) -> str:
    """headline.md: the headline between the markers a README carries it in (headline.py checks and fills it)."""
    return "\n".join([HEADLINE_START, *headline_lines(rows), HEADLINE_END, ""])


def _markdown_encoders(rows: list[Row]) -> list[str]:
    """The encoder as an axis: per task, size and strategy, each encoder's Δ side by side, where a report holds
    two encoders or more on the same task and size (an encoder's Δ is paired within that encoder only)."""
    encoders = sorted({row.model for row in rows})
    grouped: dict[tuple, dict[str, Row]] = defaultdict(dict)
    for row in rows:
        grouped[(row.task, row.dataset, row.metric, row.train_size)][row.model] = row
    shared = {key: by_encoder for key, by_encoder in grouped.items() if len(by_encoder) > 1}
    if not shared:
        return []
    header = ("task", "dataset", "metric", "train size", "strategy", *encoders)
    lines = []
    for (task, dataset, metric, size), by_encoder in sorted(shared.items()):
        strategies = dict.fromkeys(s for row in by_encoder.values() for s in row.sides)
        for strategy in strategies:
            cells = [_encoder_cell(by_encoder.get(encoder), strategy) for encoder in encoders]
            lines.append(_md_line([task, dataset, metric, f"{size:,d}", strategy, *cells]))
    return ["## Encoders side by side", "",
            f"Each encoder's test mean (n seeds) and, for a strategy, its Δ vs {report_baseline(rows)} of the same encoder with "
            "its interval and verdict (from the table above). Encoders are never paired with each other: their "
            "scores differ by architecture, pretraining and size, so read across a line for which strategy each "
            "encoder prefers, not which encoder wins.", "",
            _md_line(header), _md_line(["---"] * len(header)), *lines, ""]


def _encoder_cell(row: Row | None, strategy: str) -> str:
    side = row.sides.get(strategy) if row is not None else None
    if side is None:
        return DASH
    comparison = row.comparison(strategy)
    if comparison is None:
        return format_score(side)
    return f"{format_score(side)}; Δ {format_delta(comparison)}, {comparison.verdict}"


def every_metric_lines(rows: list[Row]) -> list[tuple[Row, str, str, Interval]]:
    """(row, strategy, metric, interval) for every metric of every comparison with intervals, then the main
    metric on each extra test set ("f1 on <name>")."""
    return [(row, strategy, metric, interval) for row in rows for strategy, comparison in row.comparisons.items()
            for metric, interval in [*comparison.intervals.items(),
                                     *((f"{row.metric} on {name}", extra)
                                       for name, extra in comparison.extra_intervals.items())]]


def _markdown_every_metric(rows: list[Row]) -> list[str]:
    lines = every_metric_lines(rows)
    if not lines:
        return []
    header = ("task", "dataset", "encoder", "train size", "resampled unit", "strategy", "metric",
              f"Δ vs {report_baseline(rows)} [{LEVEL} CI]", "p (unadjusted)")
    return ["## Every metric of the task", "",
            "The same paired bootstrap for each metric the task reports; the first metric of each comparison is "
            "the main one (Holm-adjusted in the table above); the others are descriptive, not adjusted.", "",
            _md_line(header), _md_line(["---"] * len(header)),
            *(_md_line([row.task, row.dataset, row.model, str(row.train_size), row.unit, strategy, metric,
                        format_interval(interval), f"{interval.p_value:.3g}"])
              for row, strategy, metric, interval in lines), ""]


def _markdown_crossovers(crossovers: dict[tuple, Crossover], baseline: str) -> list[str]:
    lines = ["## Where a strategy overtakes " + baseline, ""]
    if not crossovers:
        return lines + ["No strategy was compared at two or more training sizes with intervals.", ""]
    header = ("task", "dataset", "metric", "encoder", "strategy", "sizes measured", f"crossover size [{LEVEL} CI]")
    return lines + [
        "**Descriptive, not a test** (no adjustment; the resampling cannot see the spread between training runs "
        "with few seeds). Per learning curve, the training size from which the strategy's observed Δ stays above "
        "0: interpolated in log size between the last measured size where Δ ≤ 0 and the next. The interval is the "
        "same rule applied to every bootstrap resample (the sizes resampled together); its ends are ≤ the smallest "
        "size (ahead everywhere) or > the largest (never ahead for good). Measured sizes bound what can be said.", "",
        _md_line(header), _md_line(["---"] * len(header)),
        *(_md_line([task, dataset, metric, model, strategy, ", ".join(f"{size:,d}" for size in found.sizes),
                    format_crossover(found)])
          for (task, dataset, metric, model, strategy), found in crossovers.items()), ""]


MOVERS = 3  # classes or entity types listed per comparison


def _markdown_class_movers(rows: list[Row]) -> list[str]:
    """Per row and strategy, the classes (entity types, tags) whose mean test F1 differs most from the baseline's."""
    lines = []
    for row in rows:
        baseline = row.side(row.baseline)
        for strategy, side in row.sides.items():
            compared = baseline is not None and strategy != row.baseline
            shared = sorted(baseline.class_f1.keys() & side.class_f1.keys()) if compared else []
            moves = sorted(((side.class_f1[name] - baseline.class_f1[name], name) for name in shared),
                           key=lambda move: (-abs(move[0]), move[1]))[:MOVERS]
            if moves:
                lines.append(f"- {row.task} ({row.dataset}, {row.model}, n={row.train_size:,d}) {strategy}: "
                             + ", ".join(f"{name} {delta:+.2f}" for delta, name in moves))
    if not lines:
        return []
    return ["## Classes that move most", "",
            f"Per comparison, the {MOVERS} classes, entity types or tags whose test F1 (mean over seeds) differs "
            f"most from {report_baseline(rows)}'s: descriptive, without intervals.", "", *lines, ""]


def _markdown_still_improving(rows: list[Row]) -> list[str]:
    """The rows whose runs stopped with dev still improving: their comparison is one at the trainer's budget,
    not between converged models."""
    limited = [(row, strategy, side) for row in rows for strategy, side in row.sides.items() if side.still_improving]
    if not limited:
        return []
    runs = sum(side.still_improving for _, _, side in limited)
    total = sum(side.n for row in rows for side in row.sides.values())
    return ["## Runs stopped while still improving", "",
            f"{runs} of the {total} runs had their best dev score at their last evaluation: the budget "
            "(epochs, update cap or floor), not early stopping, ended them, and more training might have moved "
            "their scores. A comparison that involves them holds at this budget, not at convergence.", "",
            *(f"- {row.task} ({row.dataset}, {row.model}, n={row.train_size}) {strategy}: "
              f"{side.still_improving} of {side.n} runs" for row, strategy, side in limited), ""]


def _markdown_without_interval(rows: list[Row]) -> list[str]:
    missing = [(row, strategy, comparison.no_interval) for row in rows
               for strategy, comparison in row.comparisons.items() if comparison.main is None]
    if not missing:
        return []
    return ["## Comparisons without an interval", "",
            *(f"- {row.task} ({row.dataset}, {row.model}, n={row.train_size}) {strategy}: {reason}"
              for row, strategy, reason in missing), ""]


def _markdown_selections(selections: list[Selection]) -> list[str]:
    header = ("task", "dataset", "metric", "encoder", "train size", "strategy", "setting", "seeds", "dev mean",
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
CSV_SIDE_FIELDS = ("n", "test_mean", "test_std", "dev_mean", "extra_tests", "train_seconds", "feature_seconds",
                   "feature_seconds_amortised", "run_seconds", "trainable_params")
CSV_COMPARISON_FIELDS = ("baseline", "pairs", "pairs_left_out", "delta_test", "ci_low", "ci_high", "p_value",
                         "p_holm", "verdict", "run_seconds_ratio", "trainable_params_ratio", "se", "df",
                         "seed_variance", "shared_test_variance", "test_set_low", "test_set_high", "mde",
                         "mde_unadjusted")
INTERVAL_FIELDS = ("task", "dataset", "model", "train_size", "unit", "strategy", "baseline", "metric", "delta",
                   "ci_low", "ci_high", "p_value")


def _blank_or(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _csv_side(side: SideSummary) -> list[str]:
    extra = "; ".join(f"{name}={mean:.4f} (n={seeds})" for name, (mean, seeds) in side.extra_tests.items())
    return [str(side.n), f"{side.test_mean:.4f}", _blank_or(side.test_std, ".4f"), f"{side.dev_mean:.4f}", extra,
            f"{side.train_seconds:.2f}", f"{side.feature_seconds:.2f}", f"{side.feature_seconds_amortised:.2f}",
            f"{side.run_seconds:.2f}", str(round(side.trainable_params))]


def _csv_comparison(comparison: Comparison | None) -> list[str]:
    if comparison is None:
        return [""] * len(CSV_COMPARISON_FIELDS)
    main = comparison.main
    return [comparison.baseline, str(comparison.pairs), "; ".join(comparison.left_out),
            _blank_or(comparison.delta, ".4f"), _blank_or(main and main.low, ".4f"),
            _blank_or(main and main.high, ".4f"), _blank_or(main and main.p_value, ".6g"),
            _blank_or(comparison.p_adjusted, ".6g"), comparison.verdict,
            _blank_or(comparison.seconds_ratio, ".4f"), _blank_or(comparison.params_ratio, ".4f"),
            _blank_or(main and main.se, ".4f"), _blank_or(main and main.df, ".4g"),
            _blank_or(main and main.seed_variance, ".4f"), _blank_or(main and main.shared_variance, ".4f"),
            _blank_or(main and main.test_set[0], ".4f"), _blank_or(main and main.test_set[1], ".4f"),
            _blank_or(comparison.mde, ".4f"), _blank_or(comparison.mde_unadjusted, ".4f")]


def csv_text(rows: list[Row]) -> str:
    """comparison.csv: machine-readable, with dev means too; missing values are empty, and so is the setting
    without --select-on-dev. A last column, run_seconds_ratio_host_adjusted, is there when some comparison needed
    it (HOST_SPEED_RULE), so reports of runs on one host keep their columns."""
    host_column = any_host_adjusted(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_ROW_FIELDS + CSV_SIDE_FIELDS + CSV_COMPARISON_FIELDS
                    + (("run_seconds_ratio_host_adjusted",) if host_column else ()))
    for row in rows:
        for strategy, side in row.sides.items():
            setting = "" if side.setting is None else format_setting(side.setting)
            comparison = row.comparison(strategy)
            adjusted = None if comparison is None else comparison.host_adjusted_ratio
            host_cell = [_blank_or(adjusted, ".4f")] if host_column else []
            writer.writerow([row.task, row.dataset, row.metric, row.model, row.train_size, strategy, setting,
                             *_csv_side(side), *_csv_comparison(comparison), *host_cell])
    return buffer.getvalue()


def intervals_csv(rows: list[Row]) -> str:
    """intervals.csv: one line per comparison and metric, with its interval and unadjusted p-value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INTERVAL_FIELDS)
    for row, strategy, metric, interval in every_metric_lines(rows):
        writer.writerow([row.task, row.dataset, row.model, row.train_size, row.unit, strategy, row.baseline, metric,
                         f"{interval.delta:.4f}", f"{interval.low:.4f}", f"{interval.high:.4f}",
                         f"{interval.p_value:.6g}"])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------- LaTeX

_LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # The few non-ASCII symbols the table uses, so the file compiles with pdflatex and no extra packages.
    "±": r"$\pm$", "—": "---", "−": "$-$", "Δ": r"$\Delta$", "≥": r"$\geq$", "×": r"$\times$",
    "≤": r"$\leq$", "≈": r"$\approx$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_REPLACEMENTS.get(char, char) for char in text)


def _latex_line(cells) -> str:
    return " & ".join(latex_escape(cell) for cell in cells) + r" \\"


def _latex_body(rows: list[Row], layout: Layout) -> list[str]:
    """Rows apart by a rule; a row's task to train size printed once, on its first line, as a paper table would."""
    body: list[str] = []
    for row in rows:
        lines = table_lines(row, layout)
        body += [r"\hline"] if body else []
        body += [_latex_line(line if index == 0 else [""] * ROW_KEY_CELLS + line[ROW_KEY_CELLS:])
                 for index, line in enumerate(lines)]
    return body


def latex(rows: list[Row], with_setting: bool = False) -> str:
    """comparison.tex: the measured table as a tabular to \\input into a paper."""
    layout = Layout.of(rows, with_setting)
    table_columns = columns(layout)
    return "\n".join([
        f"% elmo-bench: each strategy vs {layout.baseline}, test scores (mean +/- sample std over seeds).",
        f"% Delta: t on the seeds' paired differences plus the shared test-set variance, {LEVEL} interval; "
        "p Holm-adjusted over the report; MDE at 80% power."
        + (" Settings chosen on dev; test reported once." if with_setting else ""),
        rf"\begin{{tabular}}{{{''.join(align for _, align in table_columns)}}}",
        r"\hline",
        _latex_line([name for name, _ in table_columns]),
        r"\hline",
        *_latex_body(rows, layout),
        r"\hline",
        r"\end{tabular}",
        "",
    ])
