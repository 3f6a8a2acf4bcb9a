"""Published ELMo figures, quoted with their source next to (never inside) the measured results.

Only figures checked against the papers are listed (see /work/shared/docs/EXPERIMENTS.md). They come from other
task models, full training sets and GloVe inputs, so they are context for the measured numbers, not a target.
No published ELMo figure on AG News was found; none is listed for POS.
"""
from __future__ import annotations

from dataclasses import dataclass

PETERS_2018 = "Peters et al. 2018, \"Deep contextualized word representations\", NAACL, Table 1"
DEVLIN_2019 = ("Devlin et al. 2019, \"BERT: Pre-training of deep bidirectional transformers for language "
               "understanding\", NAACL, Table 1 (GLUE test server)")


@dataclass(frozen=True)
class PublishedFigure:
    task: str  # the elmo-bench task name it is shown next to
    dataset: str
    system: str  # the published task model that used ELMo
    split: str
    metric: str
    figure: str  # as printed in the source, keeping its precision (mean ± std over seeds where given)
    citation: str


PUBLISHED = (
    PublishedFigure("ner", "CoNLL-2003", "biLSTM-CRF + ELMo", "test", "F1", "92.22 ± 0.10", PETERS_2018),
    PublishedFigure("sst5", "SST-5", "BCN + ELMo", "test", "accuracy", "54.7 ± 0.5", PETERS_2018),
    PublishedFigure("squad", "SQuAD 1.1", "improved BiDAF + ELMo (single model)", "test", "F1", "85.8",
                    PETERS_2018),
    PublishedFigure("stsb", "STS-B", "BiLSTM + ELMo + Attn", "test", "Spearman", "73.3", DEVLIN_2019),
)


def published_for(tasks: set[str]) -> list[PublishedFigure]:
    """The published figures for the measured tasks, in a fixed order."""
    return [figure for figure in PUBLISHED if figure.task in tasks]
