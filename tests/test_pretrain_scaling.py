"""scripts/pretrain_scaling.py: held-out perplexity against words seen, rows marked comparable only on the same
held-out lines and vocabulary."""
from __future__ import annotations

import json
import sys

import pytest

from elmo_bench.config import PROJECT_ROOT
from elmo_bench.pretrain.config import PretrainConfig, ShapeConfig
from elmo_bench.pretrain.train import Pretrainer

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import pretrain_scaling  # noqa: E402

TINY = ShapeConfig(char_embedding_dim=4, filters=[[1, 4], [2, 8]], n_highway=1, lstm_dim=16, projection_dim=8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_dir):
    """Two tiny runs on the same text (seeds 0 and 1: other held-out lines), each scored every 1,000 words."""
    root = tmp_path_factory.mktemp("scaling")
    lines = (shared_dir / "data/corpus/lm1b_heldout/1b_benchmark.dev.tokens").read_text(encoding="utf-8")
    (root / "news.txt").write_text("\n".join(lines.splitlines()[:200]) + "\n", encoding="utf-8")
    for seed in (0, 1):
        Pretrainer(PretrainConfig(name=f"tiny{seed}", corpus=["news.txt"], data_root=str(root), shape=TINY,
                                  output_dir=str(root / "pretrained" / f"tiny{seed}"), vocab_size=200, min_count=2,
                                  num_samples=50, heldout_sentences=20, batch_tokens=400, bptt_steps=10,
                                  max_tokens=2500, eval_every_tokens=1000, seed=seed)).run()
    return root / "pretrained"


def test_rows_per_evaluation_and_the_comparability_mark(runs, capsys):
    reference = runs / "tiny0" / "export" / "model_card.json"
    assert pretrain_scaling.main([str(runs), "--reference", str(reference)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    histories = {s: json.loads((runs / f"tiny{s}" / "history.json").read_text())["history"] for s in (0, 1)}
    # the exports' cards are dropped for their runs' history.json, which hold their points: at 1,000 and 2,000
    # words, and where the 2,500-word budget stopped the run
    assert [h["tokens_seen"] // 1000 for h in histories[0]] == [1, 2, 2] and histories[0][-1]["tokens_seen"] >= 2500
    assert [(r[0], r[3]) for r in rows] == [(f"| tiny{s}", f"{h['tokens_seen']:,}") for s in (0, 1)
                                            for h in histories[s]]
    assert {r[-1] for r in rows if "tiny0" in r[0]} == {"yes |"}
    assert {r[-1] for r in rows if "tiny1" in r[0]} == {"**no** |"}  # another seed draws other held-out lines
    assert rows[0][7] == f"{histories[0][0]['mean']:.1f}"


def test_a_card_without_fingerprints_matches_on_counts(runs):
    card = json.loads((runs / "tiny0" / "export" / "model_card.json").read_text())
    old = json.loads(json.dumps(card))
    del old["corpus"]["heldout_fingerprint"], old["vocabulary"]["fingerprint"]
    assert pretrain_scaling.comparable(pretrain_scaling.identity(card), pretrain_scaling.identity(old))
    old["corpus"]["heldout_tokens"] += 1
    assert not pretrain_scaling.comparable(pretrain_scaling.identity(card), pretrain_scaling.identity(old))


def test_cpu_small_card_gives_its_final_point():
    card = json.loads((PROJECT_ROOT / "models/cpu-small/model_card.json").read_text())
    assert pretrain_scaling.points(card) == [{"tokens_seen": 8_075_275, "train_seconds": 3600.2,
                                              **card["heldout_perplexity"]}]
