"""Hydra callback that writes the report when a multirun sweep ends.

Enable it with, e.g. in conf/hydra or on the command line:
    hydra.callbacks.report._target_=elmo_bench.report.callback.ReportCallback
"""
from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from .build import build_report

log = logging.getLogger(__name__)


class ReportCallback(Callback):
    def __init__(self, references: bool = True, select_on_dev: bool = False) -> None:
        self.references = references
        self.select_on_dev = select_on_dev  # a tuning sweep (+experiment=tune): each strategy's best setting on dev

    def on_multirun_end(self, config, **kwargs) -> None:
        """Report on <hydra.sweep.dir> into <hydra.sweep.dir>/report."""
        try:
            sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
            if sweep_dir is None:
                log.warning("elmo-bench report skipped: the config has no hydra.sweep.dir")
                return
            report = build_report([Path(sweep_dir)], Path(sweep_dir) / "report", references=self.references,
                                  select_on_dev=self.select_on_dev)
            log.info("elmo-bench report: %s (%d rows)", report.out_dir / "comparison.md", len(report.rows))
        except Exception:  # a report failure must never fail the sweep it summarises
            log.exception("elmo-bench report failed; the sweep's results are unaffected")
