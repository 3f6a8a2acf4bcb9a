#!/usr/bin/env python
"""Export the biLM of a pretraining checkpoint, while its run goes on: options.json and weights.hdf5.

    python scripts/export_checkpoint.py pretrained/cpu-mid/checkpoint.pt pretrained/cpu-mid/snapshot

For using a long run's model before it ends (probes, a task cell with `model=custom`). It only reads the
checkpoint (written atomically by the run, so never half-written), never writes next to it, and needs no corpus:
the network's shape comes from the checkpoint's settings. It also writes `snapshot.json`: where the run was
(words seen, updates, epoch, step) and its latest held-out perplexity. The exported pair is checked to load back
through `load_bilm` with the checkpoint's outputs. The run's own export (at its end) adds the vocabulary and
the model card.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from elmo_bench.cell.atomic import write_json
from elmo_bench.elmo import BiLM, save_weights
from elmo_bench.pretrain.config import ShapeConfig
from elmo_bench.pretrain.train import check_round_trip

PROBE_TEXTS = [("The", "cat", "sat", "on", "the", "mat", "."), ("Prices", "rose", "sharply", "in", "March")]


def export(checkpoint: Path, folder: Path) -> dict:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "shape" not in saved.get("settings", {}):
        raise SystemExit(f"{checkpoint}: no settings.shape (written by an older elmo-bench-pretrain); export it by"
                         " resuming the run to its end instead")
    bilm = BiLM(ShapeConfig(**json.loads(saved["settings"]["shape"])).to_options())
    bilm.load_state_dict({k[len("bilm."):]: v for k, v in saved["model"].items() if k.startswith("bilm.")})
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "options.json", bilm.options.to_json())
    save_weights(bilm, folder / "weights.hdf5")
    check_round_trip(bilm, folder, PROBE_TEXTS)
    state = saved["state"]
    snapshot = {"checkpoint": str(checkpoint), "parameters": sum(p.numel() for p in bilm.parameters()),
                **{key: state[key] for key in ("tokens_seen", "updates", "epoch", "step", "train_seconds")},
                "latest_heldout": state["history"][-1] if state["history"] else None}
    write_json(folder / "snapshot.json", snapshot)
    return snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a run's checkpoint.pt")
    parser.add_argument("folder", type=Path, help="where options.json, weights.hdf5 and snapshot.json go")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"no checkpoint at {args.checkpoint}", file=sys.stderr)
        return 2
    print(json.dumps(export(args.checkpoint, args.folder), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
