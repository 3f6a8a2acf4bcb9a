"""The registries are the only lists: every task family, strategy and encoder has its config file, every config
file names a registered kind, and a family's stock tasks come from conf/ (so tests and scripts iterate these)."""
from __future__ import annotations

from elmo_bench.config import conf_choices
from elmo_bench.encoders import ENCODERS
from elmo_bench.strategies import STRATEGIES
from elmo_bench.tasks import FAMILIES


def test_every_family_has_its_generic_config_and_every_task_file_a_registered_family():
    tasks = conf_choices("task")
    families = {family.family for family in FAMILIES}
    assert all(tasks.get(family) == family for family in families)  # conf/task/<family>.yaml: your own data
    assert set(tasks.values()) == families
    assert {tasks[name] for name in ("ner", "pos", "sst5", "agnews", "stsb", "squad")} == families


def test_every_strategy_and_encoder_has_a_config_and_no_config_names_an_unknown_kind():
    strategies, models = conf_choices("strategy"), conf_choices("model")
    assert all(strategies.get(strategy.kind) == strategy.kind for strategy in STRATEGIES)
    assert set(strategies.values()) == {strategy.kind for strategy in STRATEGIES}
    assert set(models.values()) == {encoder.kind for encoder in ENCODERS}


def test_exactly_one_strategy_is_the_baseline():
    from omegaconf import OmegaConf

    from elmo_bench.config import register_resolvers
    from elmo_bench.strategies import make_strategy

    register_resolvers()  # the schemas' defaults use them (the feature cache's folder)
    baselines = []
    for strategy in STRATEGIES:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(strategy.config_schema),
                                                     {"name": strategy.kind}))
        if make_strategy(config).is_baseline:
            baselines.append(strategy.kind)
    assert baselines == ["feature_ensemble"]


def test_every_family_has_a_resampling_rule_for_the_report():
    from elmo_bench.metrics.resampling import RESAMPLING

    assert set(RESAMPLING) == {family.family for family in FAMILIES}
