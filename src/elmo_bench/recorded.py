"""Config keys added after runs were recorded, with the value every earlier run had: a cell folder or result
file written before a key existed is the same experiment as one that sets the key to this value. Torch-free, so
the report and the scripts that read result files share it with the runner."""
from __future__ import annotations

ADDED_KEYS = {"trainer.min_delta": 0.0}
