"""The package's modules import one another without a cycle, and the report and the cell's layout stay torch-free."""
from __future__ import annotations

import ast
import subprocess
import sys

from elmo_bench.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "elmo_bench"


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path, name: str) -> set[str]:
    """The package modules a module imports anywhere: an import deferred into a function to dodge a cycle is still
    one."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{target}.{alias.name}" for alias in node.names} | {target}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {module for module in found if module.startswith("elmo_bench")}


def test_no_import_cycle_among_the_packages_modules():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in imported(path, name) if m in modules and m != name} for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle of meaning
    graph = {name: {m for m in targets if not name.startswith(m + ".")} for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*trail, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*trail, node])):
                return cycle
        state[node] = 2
        return None

    cycles = [cycle for name in sorted(graph) if name not in state and (cycle := visit(name, []))]
    assert cycles == []


def test_the_report_and_the_cell_layout_load_without_torch():
    code = ("import sys, elmo_bench.report.cli, elmo_bench.cell.layout, elmo_bench.cell.result, "
            "elmo_bench.metrics.resampling; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
