"""Committed results stay light: each cell's files are written once and small, so one new cell adds only its own
files to the clone. The predictions archives of the studies from before per-cell predictions are frozen: they
keep their exact size (a rewrite would add another ~10 MB version to every clone)."""
from __future__ import annotations

from elmo_bench.config import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "results"
LIMIT_BYTES = 1 << 20  # 1 MiB: a cell's gzipped predictions on the stock test sets are far below it
FROZEN_ARCHIVES = {  # read in place by cell/layout.py; never rewritten
    "encoders/predictions.tar.gz": 1328683,
    "fair_protocol/predictions.tar.gz": 4859802,
    "study_converge/predictions.tar.gz": 10000572,
    "study_converge_gpu/predictions.tar.gz": 454530,
    "study_cpu/predictions.tar.gz": 9958582,
    "study_minilm/predictions.tar.gz": 3062980,
}


def test_no_file_under_results_is_over_the_limit_and_the_old_archives_are_frozen():
    sizes = {str(path.relative_to(RESULTS)): path.stat().st_size for path in RESULTS.rglob("*") if path.is_file()}
    assert {name: sizes.get(name) for name in FROZEN_ARCHIVES} == FROZEN_ARCHIVES
    too_big = {name: size for name, size in sizes.items() if size > LIMIT_BYTES and name not in FROZEN_ARCHIVES}
    assert too_big == {}
