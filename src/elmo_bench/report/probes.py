"""The layer table: linear-probe accuracy per layer (probe.json, written by elmo-bench-probe) beside the scalar-mix
weights that feature_ensemble runs learned for the same task and encoder."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .load import PROBE_FILE, RunResult, leave_out
from .table import baseline_strategy


@dataclass(frozen=True)
class ProbeResult:
    path: Path
    task: str
    dataset: str
    model: str
    train_size: int
    seed: int
    unit: str
    probes: dict[str, tuple[float, float]]  # representation ("layer 1", "learned mix") -> (dev, test) accuracy
    mix_of: str | None = None  # the strategy whose learned mix was probed too (probe.cell); its own row


def load_probes(folders: list[Path], problems: list[str]) -> list[ProbeResult]:
    """Every complete probe.json under the folders; a broken one is named and left out."""
    found = sorted({path.resolve() for folder in folders if folder.is_dir() for path in folder.rglob(PROBE_FILE)})
    probes = []
    for path in found:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            scores = {name: (float(p["dev"]), float(p["test"])) for name, p in data["probes"].items()}
            probes.append(ProbeResult(path, str(data["task"]), str(data["dataset"]), str(data["model"]),
                                      int(data["train_size"]), int(data["seed"]), str(data["unit"]), scores,
                                      data.get("mix_of")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            leave_out(problems, f"{path}: not a complete probe record ({error!r}), left out")
    return probes


def markdown_probes(probes: list[ProbeResult], runs: list[RunResult]) -> list[str]:
    """The layer table, one line per task, encoder and training size (probes averaged over seeds)."""
    if not probes:
        return []
    grouped: dict[tuple, list[ProbeResult]] = defaultdict(list)
    for probe in probes:
        key = (probe.task, probe.dataset, probe.model, probe.mix_of or "", probe.train_size, probe.unit)
        grouped[key].append(probe)
    names = sorted({name for probe in probes for name in probe.probes}, key=_representation_order)
    baseline = baseline_strategy(runs)
    header = ["task", "dataset", "model", "train size", "probed unit", "seeds",
              *(f"{name}: test (dev)" for name in names), f"{baseline} mix weights (runs)"]
    lines = ["## Linear probes on the frozen encoder", "",
             "Logistic regression on each layer's features (per token for tagging, the sentence's mean token for "
             "classification), C chosen on dev; accuracy ×100, mean over seeds. Beside it, the softmax weights "
             f"of the scalar mix that {baseline} runs of the same task and encoder learned (layer 0 first).", "",
             "| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    for (task, dataset, model, mix_of, size, unit), group in sorted(grouped.items()):
        cells = [_mean_accuracy(group, name) for name in names]
        shown = f"{model} ({mix_of}'s mix)" if mix_of else model
        lines.append("| " + " | ".join([task, dataset, shown, f"{size:,d}", unit, str(len(group)), *cells,
                                        _mix_weights(runs, task, model)]) + " |")
    return lines + [""]


def _representation_order(name: str) -> tuple:
    return (name.startswith("learned"), name)


def _mean_accuracy(group: list[ProbeResult], name: str) -> str:
    scores = [probe.probes[name] for probe in group if name in probe.probes]
    if not scores:
        return "—"
    dev, test = np.mean(scores, axis=0)
    return f"{test:.2f} ({dev:.2f})"


def _mix_weights(runs: list[RunResult], task: str, model: str) -> str:
    weights = [run.layer_weights for run in runs
               if run.task == task and run.model == model and run.baseline and run.layer_weights]
    if not weights or len({len(w) for w in weights}) > 1:
        return "—"
    return ", ".join(f"{w:.2f}" for w in np.mean(weights, axis=0)) + f" ({len(weights)})"
