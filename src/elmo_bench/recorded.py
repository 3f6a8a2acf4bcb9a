"""Config keys added after runs were recorded, with the value every earlier run had: a cell folder or result
file written before a key existed is the same experiment as one that sets the key to this value. Torch-free, so
the report and the scripts that read result files share it with the runner."""
from __future__ import annotations

# task.unseen_labels: earlier runs scored an unseen tag as wrong without a word; on data where a run with "error"
# succeeds (no unseen tag), that is the same experiment.
ADDED_KEYS = {"trainer.min_delta": 0.0, "task.unseen_labels": "error"}
