"""Hydra entry points; thin shells around `runner.run`.

    elmo-bench task=ner strategy=finetune data.train_size=2000 seed=2
    elmo-bench -m task=ner,pos strategy=feature_ensemble,finetune data.train_size=500,2000
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from .config import PROJECT_ROOT, check_mandatory, register_resolvers, register_schemas, typed
from .encoders import encoder_schemas, user_errors
from .errors import ConfigError, UserError
from .pretrain.config import register_pretrain_schema
from .cell.runner import make_cell_folder, run
from .strategies import strategy_schemas
from .tasks import head_schemas, task_schemas

log = logging.getLogger("elmo_bench")

# Errors with a message that says what to change: reported in one line, no traceback.
USER_ERRORS = (UserError, *user_errors())


class OutputFolderCheck(Callback):
    """Checks before Hydra acts on the config: Hydra resolves the run's folder from the config (a key left `???`,
    such as model.name of model=transformer, fails there) and makes it before elmo-bench gets control (an
    output_dir that is a file or cannot be written fails in its mkdir). Each must end in a one-line message naming
    the key, not in Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(lambda: typed(without_hydra(config)))  # every value check, before any folder exists
        self._check(lambda: make_cell_folder(Path(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        # The sweep's own config lacks the swept values (model.name=a,b): those keys are set job by job.
        swept = frozenset(override.split("=")[0].lstrip("+~") for override in config.hydra.overrides.task)
        self._check(lambda: check_mandatory(without_hydra(config), swept))
        self._check(lambda: make_cell_folder(Path(config.hydra.sweep.dir)))

    @staticmethod
    def _check(step) -> None:
        try:
            step()
        except ConfigError as error:
            log.error("%s", error)
            raise SystemExit(2) from None


def without_hydra(config: DictConfig) -> DictConfig:
    """The run's config as the task function gets it: without Hydra's own node."""
    config = config.copy()
    with open_dict(config):
        del config["hydra"]
    return config


def setup() -> None:
    register_resolvers()
    register_schemas({"task": task_schemas(), "head": head_schemas(), "strategy": strategy_schemas(),
                      "model": encoder_schemas()})


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="config")
def _main(cfg: DictConfig) -> float | None:
    try:
        result = run(typed(cfg))
    except USER_ERRORS as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    return result and result["dev"]


def main() -> None:
    setup()
    _main()


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf" / "pretrain"), config_name="config")
def _pretrain(cfg: DictConfig) -> None:
    from .pretrain.train import Pretrainer

    try:
        overrides = " ".join(HydraConfig.get().overrides.task)  # the card names the command that made it
        card = Pretrainer(typed(cfg), command=f"elmo-bench-pretrain {overrides}".strip()).run()
    except USER_ERRORS as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    ppl = card["heldout_perplexity"]
    log.info("exported %s: held-out perplexity %.1f (unigram %.1f)", cfg.name, ppl["mean"], card["unigram_perplexity"])


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="probe")
def _probe(cfg: DictConfig) -> None:
    from .probe import run_probe

    try:
        run_probe(typed(cfg))
    except USER_ERRORS as error:
        log.error("%s", error)
        raise SystemExit(2) from None


def probe_main() -> None:
    from .probe import register_probe_schema  # scikit-learn loads only for probes

    setup()
    register_probe_schema()
    _probe()


def pretrain_main() -> None:
    register_resolvers()
    register_pretrain_schema()
    _pretrain()


if __name__ == "__main__":
    sys.exit(main())
