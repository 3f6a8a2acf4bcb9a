"""What each encoder costs on this machine, in one run: frozen features (tokens/s) and one fine-tuning update
(forward + backward through the encoder) on real NER sentences, cpu-small ELMo against MiniLM.

    python benchmarks/bench_encoders.py                     # 2 threads, batches of ~1,000 tokens (trainer default)
    python benchmarks/bench_encoders.py --threads 1 --models cpu-small,minilm,fixture

The same length-bucketed batches go through every encoder, alternating encoders repeat by repeat so a busy
neighbour slows them alike; prints the median seconds and each encoder's ratio to the first. The task model is
left out: it is the same in every arm.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from hydra import compose, initialize_config_dir

from elmo_bench.cli import setup
from elmo_bench.config import PROJECT_ROOT, shared_path, typed
from elmo_bench.data.conll import read_column_file
from elmo_bench.batching import bucket_batches
from elmo_bench.encoders import Encoder, load_encoder


def encoder_named(model: str) -> Encoder:
    setup()
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return load_encoder(typed(compose("config", [f"model={model}"])).model, seed=1)


def features_seconds(encoder: Encoder, batches: list[list[tuple[str, ...]]]) -> float:
    encoder.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for texts in batches:
            encoder(texts)
    return time.perf_counter() - start


def update_seconds(encoder: Encoder, texts: list[tuple[str, ...]]) -> float:
    """One forward + backward through every part of the encoder (what finetune adds to an update)."""
    encoder.train()
    encoder.set_trainable([True] * len(encoder.parts()))
    start = time.perf_counter()
    layers, _ = encoder(texts)
    sum(layer.sum() for layer in layers).backward()
    elapsed = time.perf_counter() - start
    encoder.zero_grad(set_to_none=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cpu-small,minilm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=1000, help="CoNLL-2003 dev sentences embedded")
    parser.add_argument("--batch-tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("ELMO_BENCH_SHARED", shared_path(""))
    sentences = [s.tokens for s in read_column_file(shared_path("data/conll2003/eng.testa"), label_column=3)]
    sentences = sentences[: args.sentences]
    batches = [[sentences[i] for i in batch] for batch in bucket_batches([len(s) for s in sentences],
                                                                         args.batch_tokens)]
    tokens = sum(len(s) for s in sentences)
    encoders = {model: encoder_named(model) for model in args.models.split(",")}
    features = {model: [] for model in encoders}
    updates = {model: [] for model in encoders}
    for _ in range(args.repeats):
        for model, encoder in encoders.items():
            features[model].append(features_seconds(encoder, batches))
            updates[model].append(statistics.median(update_seconds(encoder, batch) for batch in batches[:10]))
    first = next(iter(encoders))
    print(f"{tokens:,d} tokens in {len(batches)} batches of <= {args.batch_tokens} tokens, {args.threads} threads, "
          f"torch {torch.__version__}, median of {args.repeats}")
    print(f"{'encoder':<12}{'params':>12}{'features tok/s':>16}{'ratio':>8}{'update s/batch':>16}{'ratio':>8}")
    for model, encoder in encoders.items():
        feature_s, update_s = statistics.median(features[model]), statistics.median(updates[model])
        params = sum(p.numel() for p in encoder.parameters())
        print(f"{model:<12}{params:>12,d}{tokens / feature_s:>16,.0f}{feature_s / statistics.median(features[first]):>7.2f}x"
              f"{update_s:>16.3f}{update_s / statistics.median(updates[first]):>7.2f}x")


if __name__ == "__main__":
    main()
