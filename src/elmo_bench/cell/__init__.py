"""One cell of the comparison (task × strategy × encoder × training size × seed): its folder layout and file names
(layout.py), its typed result (result.py), what makes two runs the same cell (identity.py), the claim on its folder
(claim.py), atomic writes and checkpoints, and the runner that fills it (runner.py: build -> train -> evaluate ->
write the result).

Importing this package stays torch-free (the report reads layouts and results); `cell.runner` and
`cell.checkpoints` load torch when imported themselves.
"""
from .layout import CellKey, cell_folders, size_tag
from .result import CellResult, InvalidResult

__all__ = ["CellKey", "CellResult", "InvalidResult", "cell_folders", "size_tag"]
