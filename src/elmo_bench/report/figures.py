"""PNG figures: learning curves per task, scalar-mix layer weights, and cost vs score.

Figures are drawn on bare `matplotlib.figure.Figure` objects (Agg canvas, no pyplot), so the report changes no
global backend and leaks no open figures; savefig drops the Software stamp so re-runs write identical bytes.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from .load import STRATEGIES, RunResult
from .table import Row

STRATEGY_COLOUR = {"feature_ensemble": "tab:blue", "finetune": "tab:orange"}
STRATEGY_MARKER = {"feature_ensemble": "o", "finetune": "^"}
# Task colours avoid blue and orange, which mean the two strategies in the other figures.
TASK_COLOURS = ("tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
MODEL_LINESTYLES = ("-", "--", ":", "-.")
DPI = 110


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return path


def _log_x_with_size_ticks(axes, sizes: list[int]) -> None:
    """Log x axis labelled with the sizes actually run, which reads better than powers of ten."""
    axes.set_xscale("log")
    axes.set_xticks(sizes, labels=[str(size) for size in sizes])
    axes.xaxis.set_minor_locator(NullLocator())


def learning_curve(task: str, runs: list[RunResult], path: Path) -> Path:
    """Test score vs train size for each strategy: mean line, min–max band over seeds, seeds as dots."""
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    models = sorted({run.model for run in runs})
    for model, linestyle in zip(models, MODEL_LINESTYLES * len(models)):
        for strategy in STRATEGIES:
            group = [run for run in runs if run.model == model and run.strategy == strategy]
            if not group:
                continue
            colour = STRATEGY_COLOUR[strategy]
            sizes = sorted({run.train_size for run in group})
            scores = [[run.test for run in group if run.train_size == size] for size in sizes]
            label = strategy if len(models) == 1 else f"{strategy} · {model}"
            axes.plot(sizes, [np.mean(s) for s in scores], color=colour, linestyle=linestyle,
                      marker=STRATEGY_MARKER[strategy], label=f"{label} (mean)")
            axes.fill_between(sizes, [min(s) for s in scores], [max(s) for s in scores], color=colour, alpha=0.18,
                              linewidth=0)
            axes.scatter([run.train_size for run in group], [run.test for run in group], color=colour, s=14,
                         alpha=0.6, zorder=3)
    _log_x_with_size_ticks(axes, sorted({run.train_size for run in runs}))
    metrics = "/".join(sorted({run.metric for run in runs}))
    datasets = "/".join(sorted({run.dataset for run in runs}))
    axes.set_xlabel("training examples (log scale)")
    axes.set_ylabel(f"test {metrics} (×100)")
    axes.set_title(f"{task} ({datasets}): learning curve")
    axes.grid(alpha=0.3)
    axes.legend(title="band: min–max over seeds; dots: seeds", title_fontsize="small", fontsize="small")
    return _save(figure, path)


def scalar_mix(runs: list[RunResult], path: Path) -> Path | None:
    """Mean softmax layer weight per (task, model) panel, bars grouped by layer; None when no run has weights."""
    panels: dict[tuple, dict[str, list[tuple[float, ...]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.layer_weights is not None:
            # The layer count is in the key so runs of biLMs with different depths are never averaged together.
            panels[(run.task, run.model, len(run.layer_weights))][run.strategy].append(run.layer_weights)
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), layout="constrained")  # keeps suptitle off the panels
    all_axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for axes, ((task, model, n_layers), by_strategy) in zip(all_axes, sorted(panels.items())):
        _scalar_mix_panel(axes, n_layers, by_strategy)
        axes.set_title(f"{task} · {model}")
    for axes in all_axes[len(panels):]:
        axes.set_visible(False)
    figure.suptitle("Scalar-mix layer weights (after softmax, mean over runs)")
    return _save(figure, path)


def _scalar_mix_panel(axes, n_layers: int, by_strategy: dict[str, list[tuple[float, ...]]]) -> None:
    width = 0.8 / len(STRATEGIES)
    layers = np.arange(n_layers)
    for offset, strategy in enumerate(STRATEGIES):
        weights = by_strategy.get(strategy)
        if weights:
            axes.bar(layers + (offset - (len(STRATEGIES) - 1) / 2) * width, np.mean(weights, axis=0), width,
                     color=STRATEGY_COLOUR[strategy], label=f"{strategy} (n={len(weights)} runs)")
    axes.set_xticks(layers, labels=[f"layer {layer}" for layer in layers])
    axes.set_ylim(0, 1)
    axes.set_ylabel("weight")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")


def cost_vs_score(rows: list[Row], path: Path) -> Path:
    """Mean run seconds (training + features; log x) vs mean test score per row and strategy, pairs joined."""
    figure = Figure(figsize=(7.2, 4.6))
    axes = figure.subplots()
    tasks = sorted({row.task for row in rows})
    task_colour = {task: TASK_COLOURS[index % len(TASK_COLOURS)] for index, task in enumerate(tasks)}
    for row in rows:
        sides = {strategy: getattr(row, strategy) for strategy in STRATEGIES if getattr(row, strategy) is not None}
        if len(sides) == 2:
            axes.plot([s.train_seconds for s in sides.values()], [s.test_mean for s in sides.values()],
                      color="0.75", linewidth=0.8, zorder=1)
        for strategy, side in sides.items():
            axes.scatter(side.train_seconds, side.test_mean, color=task_colour[row.task],
                         marker=STRATEGY_MARKER[strategy], s=40, edgecolor="black", linewidth=0.4, zorder=2)
    axes.set_xscale("log")
    axes.set_xlabel("mean wall time per run: training + features (s, log scale)")
    axes.set_ylabel("mean test score (task's main metric ×100)")
    axes.set_title("Cost vs score (one point per task × train size × strategy)")
    axes.grid(alpha=0.3)
    task_legend = axes.legend(
        handles=[Line2D([], [], linestyle="", marker="s", color=task_colour[task], label=task) for task in tasks],
        title="task", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.add_artist(task_legend)  # a second legend call would otherwise replace the first
    strategy_handles = [Line2D([], [], linestyle="", marker=STRATEGY_MARKER[s], color="0.4", label=s)
                        for s in STRATEGIES]
    pair_handle = Line2D([], [], color="0.75", linewidth=0.8, label="same task and size")
    axes.legend(handles=[*strategy_handles, pair_handle], title="strategy", fontsize="small", loc="lower left",
                bbox_to_anchor=(1.01, 0.0))
    return _save(figure, path)


def _file_name(prefix: str, task: str) -> str:
    # Task names come from result files; keep them from reaching outside the figures folder.
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}.png"


def draw_all(runs: list[RunResult], rows: list[Row], folder: Path) -> list[tuple[str, Path]]:
    """Write every figure into `folder`; return (caption, path) pairs in a fixed order."""
    folder.mkdir(parents=True, exist_ok=True)
    by_task: dict[str, list[RunResult]] = defaultdict(list)
    for run in runs:
        by_task[run.task].append(run)
    drawn = [(f"Learning curve: {task}", learning_curve(task, task_runs, folder / _file_name("learning_curve", task)))
             for task, task_runs in sorted(by_task.items())]
    mix = scalar_mix(runs, folder / "scalar_mix.png")
    if mix is not None:
        drawn.append(("Scalar-mix layer weights", mix))
    drawn.append(("Cost vs score", cost_vs_score(rows, folder / "cost_vs_score.png")))
    return drawn
