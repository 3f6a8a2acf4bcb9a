"""scripts/compare_budgets.py: a capped study's cells beside the same cells under a longer budget, seed by seed,
with the runs early stopping ended told from those a cap ended."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from elmo_bench.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import compare_budgets  # noqa: E402


def write_run(root: Path, strategy: str, seed: int, test: float, evaluations: list[int], best_step: int,
              subset: str = "same") -> None:
    """A result.json with what the script reads; dev is scored at `evaluations` (steps), patience 2, and rises
    by 0.01 (1 point) an evaluation up to the best step, then stays."""
    folder = root / "ner" / strategy / "cpu-small" / "n1000" / f"seed{seed}"
    folder.mkdir(parents=True)
    result = {"status": "complete", "dataset": "conll2003", "model": "cpu-small", "metric": "f1",
              "dev": 50.0, "train_seconds": 1.0, "trainable_params": 1,
              "task": "ner", "train_size": 1000, "strategy": strategy, "seed": seed, "test": test,
              "steps": evaluations[-1], "best_step": best_step, "train_subset_digest": subset,
              "config": {"trainer": {"patience": 2}},
              "history": [{"stage": "frozen", "step": step, "dev": 0.51 + 0.01 * min(i, evaluations.index(best_step))}
                          for i, step in enumerate(evaluations)]}
    (folder / "result.json").write_text(json.dumps(result))


def test_longer_budget_is_compared_seed_by_seed(tmp_path, capsys, monkeypatch):
    capped, longer = tmp_path / "capped", tmp_path / "longer"
    for seed, (frozen, tuned) in {1: (70.0, 71.0), 2: (72.0, 72.0)}.items():
        write_run(capped, "feature_ensemble", seed, frozen, [100, 200], best_step=200)
        write_run(capped, "finetune", seed, tuned, [100, 200], best_step=200)
    write_run(longer, "feature_ensemble", 1, 74.0, [100, 200, 300, 400, 500], best_step=300)  # patience ended it
    write_run(longer, "feature_ensemble", 2, 75.0, [100, 200, 300, 400], best_step=300)  # the cap ended it
    write_run(longer, "finetune", 1, 78.0, [100, 200, 300, 400], best_step=200)
    write_run(longer, "finetune", 3, 90.0, [100, 200, 300], best_step=100)  # no capped twin: left out
    monkeypatch.setattr(sys, "argv", ["compare_budgets.py", str(capped), str(longer)])
    compare_budgets.main()
    lines = capsys.readouterr().out.splitlines()
    # Last third: capped runs gain their last point (100 -> 200); seed 1's longer run is flat after step 300 of 500,
    # seed 2's (400 updates) gains from step 200 to 400; finetune's (best at 200 of 400) is flat from 200.
    assert ("| ner | 1,000 | feature_ensemble | 2 | 71.00 | 74.50 | +3.50 | 200 → 450 | 0 → 1 of 2 "
            "| +1.00 → +1.00 |") in lines
    assert "| ner | 1,000 | finetune | 1 | 71.00 | 78.00 | +7.00 | 200 → 400 | 0 → 1 of 1 | +1.00 → +0.00 |" in lines
    assert "| ner | 1,000 | finetune | 1 | +1.00 | +4.00 |" in lines  # seed 1: 71-70 capped, 78-74 longer
    assert not any("| 3 |" in line or "90.00" in line for line in lines)


def test_no_shared_run_is_an_error_naming_both_folders(tmp_path, monkeypatch):
    write_run(tmp_path / "capped", "finetune", 1, 70.0, [100], best_step=100)
    write_run(tmp_path / "longer", "finetune", 2, 70.0, [100], best_step=100)
    monkeypatch.setattr(sys, "argv", ["compare_budgets.py", str(tmp_path / "capped"), str(tmp_path / "longer")])
    with pytest.raises(SystemExit, match="no run of .*longer has a twin .* in .*capped"):
        compare_budgets.main()


def test_twins_on_different_subsets_are_refused(tmp_path, monkeypatch):
    write_run(tmp_path / "capped", "finetune", 1, 70.0, [100], best_step=100)
    write_run(tmp_path / "longer", "finetune", 1, 70.0, [100], best_step=100, subset="other")
    monkeypatch.setattr(sys, "argv", ["compare_budgets.py", str(tmp_path / "capped"), str(tmp_path / "longer")])
    with pytest.raises(SystemExit, match="ner/1000/finetune seed 1: the two budgets trained on different subsets"):
        compare_budgets.main()


@pytest.mark.parametrize(("min_delta", "ended"), [(None, False), (0.0, False), (0.01, True)])
def test_gains_below_min_delta_count_towards_patience(min_delta, ended):
    trainer = {"patience": 2} | ({} if min_delta is None else {"min_delta": min_delta})
    history = [{"stage": "frozen", "step": step, "dev": dev} for step, dev in ((100, 0.50), (200, 0.505), (300, 0.509))]
    result = {"config": {"trainer": trainer}, "history": history, "best_step": 300}
    assert compare_budgets.ended_by_patience(result) is ended


def test_a_new_stage_starts_the_count_afresh():
    history = [{"stage": "frozen", "step": 100, "dev": 0.6}, {"stage": "frozen", "step": 200, "dev": 0.5},
               {"stage": "tuned", "step": 300, "dev": 0.5}, {"stage": "tuned", "step": 400, "dev": 0.5}]
    result = {"config": {"trainer": {"patience": 2}}, "history": history, "best_step": 100}
    assert compare_budgets.ended_by_patience(result)
    assert not compare_budgets.ended_by_patience(result | {"history": history[:3]})
