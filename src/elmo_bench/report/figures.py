"""PNG figures: learning curves per task, scalar-mix layer weights, and cost vs score, for any strategies.

Each strategy gets a colour and a marker from fixed palettes in the order of table.strategy_order, the same in
every figure of one report; the baseline always gets its own (blue, circle). Figures are drawn on bare
`matplotlib.figure.Figure` objects (Agg canvas, no pyplot), so the report changes no global backend and leaks no
open figures; savefig drops the Software stamp so re-runs write identical bytes.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from .load import RunResult
from .table import Comparison, Row, SideSummary, baseline_strategy, one_device_type, report_baseline, strategy_order


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


STRATEGY_COLOURS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
                    "tab:cyan", "tab:gray")
STRATEGY_MARKERS = ("^", "s", "D", "v", "P", "X", "*", "<", ">")
BASELINE_STYLE = Style("tab:blue", "o")  # kept out of the palettes, so no other strategy ever looks like the baseline
# In the cost figure colours mean tasks and markers mean strategies.
TASK_COLOURS = ("tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
MODEL_LINESTYLES = ("-", "--", ":", "-.")
DPI = 110


def strategy_styles(strategies, baseline: str) -> dict[str, Style]:
    """The baseline's style, then the palettes in strategy order (cycling past the ninth other strategy); the dict's
    order is the strategy order every figure lists them in."""
    others = [strategy for strategy in strategy_order(strategies, baseline) if strategy != baseline]
    styles = {baseline: BASELINE_STYLE}
    for index, strategy in enumerate(others):
        styles[strategy] = Style(STRATEGY_COLOURS[index % len(STRATEGY_COLOURS)],
                                 STRATEGY_MARKERS[index % len(STRATEGY_MARKERS)])
    return styles


def _in_order(styles: dict[str, Style], strategies) -> list[str]:
    """`strategies` in the figures' strategy order (the styles')."""
    return [strategy for strategy in styles if strategy in set(strategies)]


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return path


def _log_x_with_size_ticks(axes, sizes: list[int]) -> None:
    """Log x axis labelled with the sizes actually run, which reads better than powers of ten."""
    axes.set_xscale("log")
    axes.set_xticks(sizes, labels=[str(size) for size in sizes])
    axes.xaxis.set_minor_locator(NullLocator())


def learning_curve(task: str, runs: list[RunResult], styles: dict[str, Style], path: Path) -> Path:
    """Test score vs train size for each strategy: mean line, min–max band over seeds, seeds as dots."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    models = sorted({run.model for run in runs})
    for model, linestyle in zip(models, MODEL_LINESTYLES * len(models)):
        for strategy in _in_order(styles, {run.strategy for run in runs}):
            group = [run for run in runs if run.model == model and run.strategy == strategy]
            if not group:
                continue
            colour = styles[strategy].colour
            sizes = sorted({run.train_size for run in group})
            scores = [[run.test for run in group if run.train_size == size] for size in sizes]
            label = strategy if len(models) == 1 else f"{strategy} · {model}"
            axes.plot(sizes, [np.mean(s) for s in scores], color=colour, linestyle=linestyle,
                      marker=styles[strategy].marker, label=f"{label} (mean)")
            axes.fill_between(sizes, [min(s) for s in scores], [max(s) for s in scores], color=colour, alpha=0.18,
                              linewidth=0)
            axes.scatter([run.train_size for run in group], [run.test for run in group], color=colour, s=14,
                         alpha=0.6, zorder=3)
    metrics = "/".join(sorted({run.metric for run in runs}))
    datasets = "/".join(sorted({run.dataset for run in runs}))
    _label_size_axes(axes, sorted({run.train_size for run in runs}), f"test {metrics} (×100)",
                     f"{task} ({datasets}): learning curve", "band: min–max over seeds; dots: seeds")
    return _save(figure, path)


def _label_size_axes(axes, sizes: list[int], ylabel: str, title: str, legend_title: str) -> None:
    """Training size on a log x axis, the labels, a grid and the legend: the same on every per-size figure."""
    _log_x_with_size_ticks(axes, sizes)
    axes.set_xlabel("training examples (log scale)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(title=legend_title, title_fontsize="small", fontsize="small")


def differences(task: str, rows: list[Row], styles: dict[str, Style], path: Path) -> Path | None:
    """Δ vs the baseline by train size with its 95% interval, one line per strategy and model; a filled marker
    where the Holm-adjusted verdict names a winner. None when no comparison of the task has an interval."""
    curves: dict[tuple[str, str], list[tuple[int, Comparison]]] = defaultdict(list)
    for row in rows:
        for strategy, comparison in row.comparisons.items():
            if comparison.main is not None:
                curves[(strategy, row.model)].append((row.train_size, comparison))
    if not curves:
        return None
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    models = sorted({model for _, model in curves})
    for index, ((strategy, model), points) in enumerate(sorted(curves.items())):
        dodge = 1 + 0.04 * (index - (len(curves) - 1) / 2)  # side by side on the log axis, so bars never overlap
        sizes = [size * dodge for size, _ in points]
        deltas = np.array([comparison.main.delta for _, comparison in points])
        spans = np.array([[delta - c.main.low, c.main.high - delta] for delta, (_, c) in zip(deltas, points)]).T
        style = styles[strategy]
        linestyle = MODEL_LINESTYLES[models.index(model) % len(MODEL_LINESTYLES)]
        label = strategy if len(models) == 1 else f"{strategy} · {model}"
        axes.errorbar(sizes, deltas, yerr=spans, color=style.colour, linestyle=linestyle, capsize=3, label=label)
        for size, delta, (_, comparison) in zip(sizes, deltas, points):
            resolved = comparison.winner is not None
            axes.scatter(size, delta, marker=style.marker, s=40, zorder=3, edgecolor=style.colour,
                         color=style.colour if resolved else "white")
    axes.axhline(0, color="0.3", linewidth=0.8)
    _label_size_axes(axes, sorted({row.train_size for row in rows}), f"Δ vs {report_baseline(rows)} (test, ×100)",
                     f"{task}: difference with its 95% interval", "filled: resolved after Holm")
    return _save(figure, path)


def scalar_mix(runs: list[RunResult], styles: dict[str, Style], path: Path) -> Path | None:
    """Mean softmax layer weight per (task, model) panel, bars grouped by layer; None when no run has weights."""
    panels: dict[tuple, dict[str, list[tuple[float, ...]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.layer_weights is not None:
            # The layer count is in the key so runs of encoders with different depths are never averaged together.
            panels[(run.task, run.model, len(run.layer_weights))][run.strategy].append(run.layer_weights)
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), layout="constrained")  # keeps suptitle off the panels
    all_axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for axes, ((task, model, n_layers), by_strategy) in zip(all_axes, sorted(panels.items())):
        _scalar_mix_panel(axes, n_layers, by_strategy, styles)
        axes.set_title(f"{task} · {model}")
    for axes in all_axes[len(panels):]:
        axes.set_visible(False)
    figure.suptitle("Scalar-mix layer weights (after softmax, mean over runs)")
    return _save(figure, path)


def _scalar_mix_panel(axes, n_layers: int, by_strategy: dict[str, list[tuple[float, ...]]],
                      styles: dict[str, Style]) -> None:
    """One bar per strategy with weights in this panel, side by side within each layer."""
    strategies = _in_order(styles, by_strategy)
    width = 0.8 / len(strategies)
    layers = np.arange(n_layers)
    for offset, strategy in enumerate(strategies):
        weights = by_strategy[strategy]
        axes.bar(layers + (offset - (len(strategies) - 1) / 2) * width, np.mean(weights, axis=0), width,
                 color=styles[strategy].colour, label=f"{strategy} (n={len(weights)} runs)")
    axes.set_xticks(layers, labels=[f"layer {layer}" for layer in layers])
    axes.set_ylim(0, 1)
    axes.set_ylabel("weight")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")


def plain_log_x_axis(axes) -> None:
    """Log x axis ticked at 1, 2 and 5 times each power of ten and labelled 500, 1,000, 2,000: matplotlib's own
    labels for the minor ticks of a range under a decade or two (3×10², 4×10², ...) run into each other."""
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())


def cost_vs_score(rows: list[Row], styles: dict[str, Style], path: Path) -> Path:
    """Mean run seconds (training + features, on the baseline's host footing; log x) vs mean test score per row and
    strategy; a row's points joined from cheapest to dearest where they trained on one device type; points trained
    on a GPU hollow."""
    figure = Figure(figsize=(7.2, 4.6))
    axes = figure.subplots()
    tasks = sorted({row.task for row in rows})
    task_colour = {task: TASK_COLOURS[index % len(TASK_COLOURS)] for index, task in enumerate(tasks)}
    for row in rows:
        for by_cost in cost_paths(row):
            axes.plot([row.levelled_run_seconds(s) for s in by_cost], [row.side(s).test_mean for s in by_cost],
                      color="0.75", linewidth=0.8, zorder=1)
        for strategy, side in row.sides.items():
            colour = task_colour[row.task]
            fill = {"color": "none", "edgecolor": colour, "linewidth": 1.2} if _on_gpu(side) else \
                {"color": colour, "edgecolor": "black", "linewidth": 0.4}
            axes.scatter(row.levelled_run_seconds(strategy), side.test_mean, marker=styles[strategy].marker, s=40,
                         zorder=2, **fill)
    plain_log_x_axis(axes)
    axes.set_xlabel("mean wall time per run: training + one-off features (s, log scale;\n"
                   f"host-levelled to {report_baseline(rows)}'s where the runs met hosts of different speed)")
    axes.set_ylabel("mean test score (task's main metric ×100)")
    axes.set_title("Cost vs score (one point per task × train size × strategy)")
    axes.grid(alpha=0.3)
    task_legend = axes.legend(
        handles=[Line2D([], [], linestyle="", marker="s", color=task_colour[task], label=task) for task in tasks],
        title="task", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.add_artist(task_legend)  # a second legend call would otherwise replace the first
    strategy_handles = [Line2D([], [], linestyle="", marker=styles[s].marker, color="0.4", label=s)
                        for s in _in_order(styles, {strategy for row in rows for strategy in row.sides})]
    pair_handle = Line2D([], [], color="0.75", linewidth=0.8, label="same task and size")
    if any(_on_gpu(side) for row in rows for side in row.sides.values()):
        strategy_handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="none",
                                       markeredgecolor="0.4", label="hollow: trained on a GPU"))
    axes.legend(handles=[*strategy_handles, pair_handle], title="strategy", fontsize="small", loc="lower left",
                bbox_to_anchor=(1.01, 0.0))
    return _save(figure, path)


def cost_paths(row: Row) -> list[list[str]]:
    """The row's strategies to join in the cost figure, each path cheapest first (host-levelled seconds). A line
    between a CPU's seconds and a GPU's would read as a strategy's cost, so a row whose sides trained on different
    device types is joined only within each device type."""
    if not one_device_type(*row.sides.values()):
        by_devices: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for strategy, side in row.sides.items():
            by_devices[side.devices].append(strategy)
        groups = [by_devices[devices] for devices in sorted(by_devices)]
    else:
        groups = [list(row.sides)]
    return [sorted(group, key=row.levelled_run_seconds) for group in groups if len(group) > 1]


def _on_gpu(side: SideSummary) -> bool:
    return any(device != "cpu" for device in side.devices)


def _file_name(prefix: str, task: str) -> str:
    # Task names come from result files; keep them from reaching outside the figures folder.
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}.png"


def draw_all(runs: list[RunResult], rows: list[Row], folder: Path) -> list[tuple[str, Path]]:
    """Write every figure into `folder`; return (caption, path) pairs in a fixed order."""
    folder.mkdir(parents=True, exist_ok=True)
    styles = strategy_styles({run.strategy for run in runs}, baseline_strategy(runs))
    by_task: dict[str, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    drawn = []
    for task, task_runs in sorted(by_task.items()):
        drawn.append((f"Learning curve: {task}",
                      learning_curve(task, task_runs, styles, folder / _file_name("learning_curve", task))))
        task_rows = [row for row in rows if row.task == task]
        gaps = differences(task, task_rows, styles, folder / _file_name("difference", task))
        if gaps is not None:
            drawn.append((f"Difference with its interval: {task}", gaps))
    mix = scalar_mix(runs, styles, folder / "scalar_mix.png")
    if mix is not None:
        drawn.append(("Scalar-mix layer weights", mix))
    drawn.append(("Cost vs score", cost_vs_score(rows, styles, folder / "cost_vs_score.png")))
    return drawn
