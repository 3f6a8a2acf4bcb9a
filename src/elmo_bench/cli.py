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
from omegaconf import DictConfig, OmegaConf

from .config import PROJECT_ROOT, ConfigError, register_resolvers, register_schemas, typed
from .data.errors import DataError
from .elmo import OptionsError, SourceError, WeightsError
from .encoders import EncoderError, encoder_schemas
from .pretrain.config import register_pretrain_schema
from .runner import make_cell_folder, run
from .strategies import strategy_schemas
from .training import TrainingError
from .tasks import head_schemas, task_schemas

log = logging.getLogger("elmo_bench")

# Errors with a message that says what to change: reported in one line, no traceback.
USER_ERRORS = (ConfigError, DataError, EncoderError, OptionsError, SourceError, WeightsError, TrainingError)


class OutputFolderCheck(Callback):
    """Hydra makes the run's (or the sweep's) folder before elmo-bench gets control; an output_dir that is a file
    or cannot be written must end in a one-line message naming the key, not in a traceback from Hydra's mkdir."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(Path(config.hydra.sweep.dir))

    @staticmethod
    def _check(folder: Path) -> None:
        try:
            make_cell_folder(folder)
        except ConfigError as error:
            log.error("%s", error)
            raise SystemExit(2) from None


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
        card = Pretrainer(OmegaConf.to_object(cfg), command=f"elmo-bench-pretrain {overrides}".strip()).run()
    except USER_ERRORS as error:
        log.error("%s", error)
        raise SystemExit(2) from None
    ppl = card["heldout_perplexity"]
    log.info("exported %s: held-out perplexity %.1f (unigram %.1f)", cfg.name, ppl["mean"], card["unigram_perplexity"])


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="probe")
def _probe(cfg: DictConfig) -> None:
    from .probe import run_probe

    try:
        run_probe(OmegaConf.to_object(cfg))
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
