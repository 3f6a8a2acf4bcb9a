#!/usr/bin/env python
"""The scaling table: held-out perplexity against words seen, per pretrained biLM.

    python scripts/pretrain_scaling.py [SOURCE ...] [--reference models/cpu-small/model_card.json]

A SOURCE is a model card (`model_card.json`), a run's `history.json` (written at every held-out evaluation
of `elmo-bench-pretrain`), or a folder searched for both (default: `models/` and `pretrained/`). Every
evaluation point is one row. A perplexity compares with the reference's only on the same held-out lines
scored with the same vocabulary: a row is marked comparable when its held-out and vocabulary fingerprints
match the reference's, or, for cards written before fingerprints existed (cpu-small's), when the split's
counts (training and held-out lines and words) and the vocabulary's size and min count all match, which
the seeded split and the frequency-ranked vocabulary make a strict check in practice.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("train_windows", "train_tokens", "heldout_windows", "heldout_tokens")


def find_sources(paths: list[Path]) -> list[Path]:
    """Model cards and histories named or under the folders named; a run's export/model_card.json is
    dropped when its history.json is there (the history holds the same points and more)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.rglob("model_card.json")) + sorted(path.rglob("history.json"))
        elif path.is_file():
            found.append(path)
    histories = {p.parent for p in found if p.name == "history.json"}
    return [p for p in found if not (p.name == "model_card.json" and p.parent.parent in histories)]


def identity(record: dict) -> dict:
    """What decides whether two perplexities compare: the held-out split and the vocabulary."""
    corpus, vocab = record["corpus"], record["vocabulary"]
    return {"counts": tuple(corpus.get(key) for key in COUNTS), "vocab": (vocab["size"], vocab["min_count"]),
            "heldout_fingerprint": corpus.get("heldout_fingerprint"), "vocab_fingerprint": vocab.get("fingerprint")}


def comparable(a: dict, b: dict) -> bool:
    if a["counts"] != b["counts"] or a["vocab"] != b["vocab"]:
        return False
    both = a["heldout_fingerprint"] and b["heldout_fingerprint"] and a["vocab_fingerprint"] and b["vocab_fingerprint"]
    return not both or (a["heldout_fingerprint"], a["vocab_fingerprint"]) == (b["heldout_fingerprint"],
                                                                              b["vocab_fingerprint"])


def points(record: dict) -> list[dict]:
    """(words seen, hours, perplexities) per evaluation; a card adds its final score; a card without a
    curve of word counts (cpu-small's) gives only its final point."""
    curve = [h for h in record.get("history", []) if "tokens_seen" in h]
    if "heldout_perplexity" in record:  # a model card: the final score, at the end of training
        training = record["training"]
        final = {"tokens_seen": training["tokens_seen"], "train_seconds": training["train_seconds"],
                 **record["heldout_perplexity"]}
        if not curve or curve[-1]["tokens_seen"] != final["tokens_seen"]:
            curve.append(final)
    return curve


def table(records: list[dict], reference: dict) -> list[str]:
    lines = ["| model | parameters | sequences | words seen | hours | forward | backward | mean | same held-out & vocab"
             " as the reference |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    ref = identity(reference)
    for record in records:
        same = "yes" if comparable(identity(record), ref) else "**no**"
        sequences = record.get("sequences") or record.get("training", {}).get("sequences", "one line at a time")
        for point in points(record):
            lines.append(f"| {record['name']} | {record['parameters']:,} | {sequences} | {point['tokens_seen']:,} |"
                         f" {point['train_seconds'] / 3600:.2f} | {point['forward']:.1f} | {point['backward']:.1f} |"
                         f" {point['mean']:.1f} | {same} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", type=Path, default=[REPO_ROOT / "models", REPO_ROOT / "pretrained"],
                        help="model cards, history.json files or folders (default: models/ and pretrained/)")
    parser.add_argument("--reference", type=Path, default=REPO_ROOT / "models/cpu-small/model_card.json",
                        help="the card whose held-out lines and vocabulary the others must share")
    args = parser.parse_args(argv)
    sources = find_sources(args.sources)
    if not sources:
        print(f"no model_card.json or history.json under {', '.join(map(str, args.sources))}", file=sys.stderr)
        return 1
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sources]
    print("\n".join(table(records, json.loads(args.reference.read_text(encoding="utf-8")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
