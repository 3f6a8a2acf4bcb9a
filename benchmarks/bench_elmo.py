#!/usr/bin/env python
"""Throughput of elmo-bench's biLM against a plain per-timestep reference of the same maths.

    python benchmarks/bench_elmo.py [--sentences 600] [--batch-tokens 1024] [--repeats 2]
                                    [--threads N] [--json out.json] [--precision bf16]

Model: the official small-ELMo shape (2x1024_128_2048cnn_1xhighway), or --options FILE, built with
`BiLM(parse_options(...))`, seeded random weights. Data: the first N sentences of CoNLL-2003
eng.train, length-bucketed by `bucket_batches` under a padded-token budget (lengths counted with
<S>/</S>); both implementations get the very same batches. What is measured (see README.md):

* frozen forward (no_grad, eval, stateless, `requires_grad_(False)`): elmo-bench with a cold
  token-type cache (first pass: the cache holds only the types of earlier batches), with a warm
  cache (the same batch again, all its types cached: the steady state after a warm-up pass), and
  the reference;
* forward + backward, every parameter trainable, loss = sum of all three output layers;
* max abs difference of the outputs (all three layers) of the two implementations; exit 1 if it
  is above --tol (1e-5); also the gradients, and the reference against the upstream TF fixture;
* fp32 torch.mm GFLOP/s of this machine, and the fraction of it each path achieves.

Timing is interleaved per batch (elmo-bench, then the reference, on the same batch) so that
background load hits both alike; per batch the fastest of --repeats is kept.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from elmo_bench.elmo import BiLM, batch_to_ids, load_bilm
from elmo_bench.batching import bucket_batches
from elmo_bench.elmo.char_ids import BOS_IDS, EOS_IDS, token_to_char_ids
from elmo_bench.elmo.options import BiLMOptions, parse_options

REPO_ROOT = Path(__file__).resolve().parents[1]

SMALL_OPTIONS = {  # elmo_2x1024_128_2048cnn_1xhighway_options.json
    "char_cnn": {
        "activation": "relu",
        "embedding": {"dim": 16},
        "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "max_characters_per_token": 50,
        "n_characters": 262,
        "n_highway": 1,
    },
    "lstm": {
        "cell_clip": 3,
        "dim": 1024,
        "n_layers": 2,
        "proj_clip": 3,
        "projection_dim": 128,
        "use_skip_connections": True,
    },
}

PATHS = {  # key -> label, in table order
    "ours_cold": "elmo-bench frozen fwd, cold cache",
    "ours_warm": "elmo-bench frozen fwd, warm cache",
    "ref_fwd": "reference frozen fwd",
    "ours_train": "elmo-bench fwd+bwd (all trainable)",
    "ref_train": "reference fwd+bwd (all trainable)",
}


# ----------------------------------------------------------------------------------------- data


def shared_dir() -> Path:
    return REPO_ROOT.parent / "shared"


def default_conll_path() -> Path:
    if os.environ.get("ELMO_BENCH_DATA"):
        return Path(os.environ["ELMO_BENCH_DATA"]) / "conll2003" / "eng.train"
    return shared_dir() / "data" / "conll2003" / "eng.train"


def read_conll_sentences(path: Path, limit: int) -> list[list[str]]:
    """First `limit` sentences (first column), skipping -DOCSTART- separators."""
    sentences: list[list[str]] = []
    current: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                if current:
                    sentences.append(current)
                    current = []
                    if len(sentences) >= limit:
                        break
                continue
            if fields[0] != "-DOCSTART-":
                current.append(fields[0])
    if current and len(sentences) < limit:
        sentences.append(current)
    return sentences


@dataclass
class Workload:
    sentences: list[list[str]]
    index_batches: list[list[int]]
    batches: list[torch.Tensor]  # char ids (B, T, 50) per batch
    tokens: int  # corpus tokens
    tokens_with_boundaries: int  # + <S>, </S> per sentence: what the model processes
    padded_positions: int  # sum over batches of B * (T + 2)
    distinct_types: int  # distinct char-id vectors in the data, + <S>, </S>
    distinct_types_per_batch: int  # summed over batches

    @classmethod
    def build(cls, sentences: list[list[str]], max_tokens: int) -> "Workload":
        index_batches = bucket_batches([len(s) + 2 for s in sentences], max_tokens)
        batches = [batch_to_ids([sentences[i] for i in batch]) for batch in index_batches]
        # Types as the encoder sees them (char-id vectors; tokens over 48 bytes are truncated).
        type_of = {t: tuple(token_to_char_ids(t)) for s in sentences for t in s}
        n_tokens = sum(len(s) for s in sentences)
        return cls(
            sentences=sentences,
            index_batches=index_batches,
            batches=batches,
            tokens=n_tokens,
            tokens_with_boundaries=n_tokens + 2 * len(sentences),
            padded_positions=sum(ids.shape[0] * (ids.shape[1] + 2) for ids in batches),
            distinct_types=len(set(type_of.values())) + 2,
            distinct_types_per_batch=sum(
                len({type_of[t] for i in batch for t in sentences[i]}) + 2 for batch in index_batches
            ),
        )

    def tokens_in(self, batch_indices: list[int]) -> int:
        return sum(len(self.sentences[i]) for b in batch_indices for i in self.index_batches[b])


# ------------------------------------------------------------------------------------ reference


class ReferenceBiLM(nn.Module):
    """The biLM written the plain way (as allennlp/bilm-tf do it), with weights copied from a `BiLM`.

    * char CNN on every (B, T+2) position, padding and duplicate tokens included; one Conv1d per
      width, activation before the max-pool; highway as separate ops; no token cache;
    * each direction and layer is a Python loop over time steps computing
      z_t = cat([x_t, h_{t-1}]) @ W_0 + B per step (no precomputed input projection);
    * the backward direction reverses every sentence separately (per-row flip), then flips back.
    """

    def __init__(self, bilm: BiLM):
        super().__init__()
        opts = bilm.options
        self.char_options, self.lstm_options = opts.char_cnn, opts.lstm
        enc = bilm.char_encoder
        self.char_embed = nn.Parameter(enc.char_embedding.weight.detach().clone())  # (262, E)
        self.convs = nn.ModuleList()
        for conv in enc.convolutions:
            copy = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0])
            copy.load_state_dict(conv.state_dict())
            self.convs.append(copy)
        self.highway_transform = nn.ModuleList()
        self.highway_carry = nn.ModuleList()
        for highway in enc.highways:
            for source, target in ((highway.transform, self.highway_transform), (highway.carry, self.highway_carry)):
                copy = nn.Linear(source.in_features, source.out_features)
                copy.load_state_dict(source.state_dict())
                target.append(copy)
        self.projection = nn.Linear(enc.projection.in_features, enc.projection.out_features)
        self.projection.load_state_dict(enc.projection.state_dict())
        # LSTM, file layout: W_0 (2P, 4D) = [W_ih; W_hh], gate blocks i, j, f, o; B (4D) without the
        # +1 forget bias (added in the cell); W_P_0 (D, P). Index [direction][layer].
        self.W0 = nn.ParameterList()
        self.B = nn.ParameterList()
        self.WP = nn.ParameterList()
        for direction in range(2):
            for layer in bilm.lstm.layers:
                fused = torch.cat([layer.weight_ih[direction], layer.weight_hh[direction]], dim=0)
                self.W0.append(nn.Parameter(fused.detach().clone()))
                self.B.append(nn.Parameter(layer.bias[direction].detach().clone()))
                self.WP.append(nn.Parameter(layer.weight_proj[direction].detach().clone()))
        self.register_buffer("bos", torch.tensor(BOS_IDS), persistent=False)
        self.register_buffer("eos", torch.tensor(EOS_IDS), persistent=False)

    def lstm_param(self, plist: nn.ParameterList, direction: int, layer: int) -> torch.Tensor:
        return plist[direction * self.lstm_options.n_layers + layer]

    def encode_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (N, P), every row computed."""
        act = torch.tanh if self.char_options.activation == "tanh" else torch.relu
        chars = F.embedding(ids, self.char_embed).transpose(1, 2)  # (N, E, C)
        pooled = []
        for conv in self.convs:
            y = act(conv(chars))  # (N, n, C-w+1)
            pooled.append(torch.max(y, dim=-1)[0])
        x = torch.cat(pooled, dim=-1)
        for transform, carry in zip(self.highway_transform, self.highway_carry):
            gate = torch.sigmoid(carry(x))
            nonlinear = torch.relu(transform(x))
            x = gate * nonlinear + (1.0 - gate) * x
        return self.projection(x)

    def run_direction(self, inputs: torch.Tensor, lengths: torch.Tensor, direction: int, layer: int) -> torch.Tensor:
        """inputs (B, T, P) in this direction's own time order -> outputs h_t (B, T, P), 0 at padding."""
        W0 = self.lstm_param(self.W0, direction, layer)
        bias = self.lstm_param(self.B, direction, layer)
        WP = self.lstm_param(self.WP, direction, layer)
        D = self.lstm_options.dim
        cell_clip, proj_clip = self.lstm_options.cell_clip, self.lstm_options.proj_clip
        batch, steps, _ = inputs.shape
        h = inputs.new_zeros(batch, self.lstm_options.projection_dim)
        c = inputs.new_zeros(batch, D)
        outputs = []
        for t in range(steps):
            z = torch.cat([inputs[:, t], h], dim=1) @ W0 + bias
            i, j, f, o = z[:, :D], z[:, D : 2 * D], z[:, 2 * D : 3 * D], z[:, 3 * D :]
            new_c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(j)
            if cell_clip:
                new_c = torch.clamp(new_c, -cell_clip, cell_clip)
            m = torch.sigmoid(o) * torch.tanh(new_c)
            new_h = m @ WP
            if proj_clip:
                new_h = torch.clamp(new_h, -proj_clip, proj_clip)
            active = (lengths > t).unsqueeze(1)
            h = torch.where(active, new_h, h)
            c = torch.where(active, new_c, c)
            outputs.append(new_h * active)
        return torch.stack(outputs, dim=1)

    @staticmethod
    def flip_rows(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        rows = [torch.cat([x[b, :n].flip(0), x[b, n:]], dim=0) for b, n in enumerate(lengths)]
        return torch.stack(rows)

    def forward(self, char_ids: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """char_ids (B, T, C) -> 3 layers (B, T, 2P) without boundaries, mask (B, T)."""
        batch, steps, width = char_ids.shape
        n_tokens = (char_ids > 0).any(dim=-1).sum(dim=1)
        ids = char_ids.new_zeros(batch, steps + 2, width)
        for b in range(batch):
            n = int(n_tokens[b])
            if n:
                ids[b, 0] = self.bos
                ids[b, 1 : n + 1] = char_ids[b, :n]
                ids[b, n + 1] = self.eos
        lengths = torch.where(n_tokens > 0, n_tokens + 2, 0)
        mask = torch.arange(steps + 2, device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T+2)
        keep = mask.unsqueeze(-1).to(torch.float32)
        tokens = self.encode_tokens(ids.view(-1, width)).view(batch, steps + 2, -1) * keep
        length_list = lengths.tolist()
        outputs = [torch.cat([tokens, tokens], dim=-1)]
        forward_in, backward_in = tokens, self.flip_rows(tokens, length_list)
        for layer in range(self.lstm_options.n_layers):
            forward_out = self.run_direction(forward_in, lengths, 0, layer)
            backward_out = self.run_direction(backward_in, lengths, 1, layer)
            if self.lstm_options.use_skip_connections and layer > 0:
                forward_out = forward_out + forward_in
                backward_out = backward_out + backward_in
            outputs.append(torch.cat([forward_out, self.flip_rows(backward_out, length_list)], dim=-1) * keep)
            forward_in, backward_in = forward_out, backward_out
        inner = torch.arange(steps, device=ids.device).unsqueeze(0) < n_tokens.unsqueeze(1)
        return [layer[:, 1 : steps + 1] * inner.unsqueeze(-1) for layer in outputs], inner


# ----------------------------------------------------------------------------------------- model


def build_bilm(seed: int, options: dict | None = None) -> BiLM:
    """Small-ELMo shape (or the shape of `options`, an options.json's content) with the modules' default
    initialisation under `seed` (LSTM uniform +-1/sqrt(D), char embedding N(0, 1), PyTorch's conv/linear
    defaults), plus the training-time highway carry bias of -2 (ELMO_FORMAT.md §4.4) so the highway starts
    near identity, as in the released models. Outputs come out within about +-2, clipping active."""
    torch.manual_seed(seed)
    bilm = BiLM(parse_options(options or SMALL_OPTIONS, "--options" if options else "small-ELMo shape"))
    with torch.no_grad():
        for highway in bilm.char_encoder.highways:
            highway.carry.bias.fill_(-2.0)
    return bilm


def describe(options: BiLMOptions, path: Path | None) -> str:
    lstm, cnn = options.lstm, options.char_cnn
    name = f"--options {path}" if path else "small-ELMo shape"
    return (f"{name} (D={lstm.dim}, P={lstm.projection_dim}, {cnn.n_filters} filters,"
            f" {cnn.n_highway} highway)")


def flops_per_token(options: BiLMOptions) -> dict[str, float]:
    """ELMO_FORMAT.md §7b multiply-adds per token, as FLOPs (2 per multiply-add)."""
    cnn, lstm = options.char_cnn, options.lstm
    C, E, n_filters = cnn.max_characters_per_token, cnn.embedding_dim, cnn.n_filters
    P, D, L = lstm.projection_dim, lstm.dim, lstm.n_layers
    macs = {
        "char_cnn": sum((C - w + 1) * w * E * n for w, n in cnn.filters),
        "highway": cnn.n_highway * 2 * n_filters * n_filters,
        "projection": n_filters * P,
        "lstm_input": 2 * L * P * 4 * D,
        "lstm_recurrent": 2 * L * (P * 4 * D + D * P),
    }
    flops = {key: 2.0 * value for key, value in macs.items()}
    flops["encoder"] = flops["char_cnn"] + flops["highway"] + flops["projection"]
    flops["lstm"] = flops["lstm_input"] + flops["lstm_recurrent"]
    flops["total"] = flops["encoder"] + flops["lstm"]
    return flops


def check_reference_on_fixture(fixtures: Path) -> float | None:
    """Anchor the reference to TensorFlow: the upstream allennlp test model (skip connections),
    batch 0 of its sentences (the only batch reproducible from zero state), top layer, against
    lm_embeddings_{k}.hdf5 (shared/fixtures/README.md, recipe 3). Max abs error; None if absent."""
    model_dir = fixtures / "allennlp-elmo"
    if not (model_dir / "lm_weights.hdf5").is_file():
        return None
    import h5py

    ref = ReferenceBiLM(load_bilm(model_dir / "options.json", model_dir / "lm_weights.hdf5")).eval()
    sentences = json.loads((model_dir / "sentences.json").read_text(encoding="utf-8"))
    batch = [sentences[k][0].split() for k in range(len(sentences))]
    with torch.no_grad():
        top = ref(batch_to_ids(batch))[0][-1]
    worst = 0.0
    for k, tokens in enumerate(batch):
        with h5py.File(model_dir / f"lm_embeddings_{k}.hdf5", "r") as handle:
            halves = torch.from_numpy(handle["0"][...])  # (2, n, P): forward, backward
        worst = max(worst, float((top[k, : len(tokens)] - torch.cat([halves[0], halves[1]], -1)).abs().max()))
    return worst


# ---------------------------------------------------------------------------------------- timing


class Clock:
    """Wall and process-CPU seconds of the `with` block."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def frozen_step(model: nn.Module, ids: torch.Tensor) -> tuple[Clock, list[torch.Tensor]]:
    with Clock() as clock, torch.no_grad():
        layers, _ = model(ids)
    return clock, layers


def train_step(model: nn.Module, ids: torch.Tensor) -> Clock:
    with Clock() as clock:
        layers, _ = model(ids)
        sum(layer.sum() for layer in layers).backward()
        model.zero_grad(set_to_none=True)
    return clock


def matmul_gflops(n: int, reps: int = 5) -> float:
    """Best-of-`reps` fp32 GFLOP/s of an n x n torch.mm with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def auto_threads() -> tuple[int, str]:
    """One thread per core that the load average leaves free (at least 1, at most torch's default).

    With more OpenMP threads than free cores the threads wait on each other at each of the many
    small ops of the time-step loops: on this 2-core machine at load 6, 2 threads ran ~10x slower
    than 1 with a 3x spread between repeats, while 1 thread gave repeatable numbers."""
    default = torch.get_num_threads()
    load, cores = load_average(), os.cpu_count() or default
    if load != load:  # nan: no load average on this platform
        return default, "torch default"
    threads = max(1, min(default, round(cores - load)))
    if threads == default:
        return threads, f"auto = torch default; load avg {load:.2f} on {cores} cores"
    return threads, f"auto: load avg {load:.2f} on {cores} cores leaves ~{threads} free; override with --threads"


def summarize(per_batch: list[list[float]]) -> tuple[float, float]:
    """seconds[repeat][batch] -> (best: sum over batches of each batch's fastest repeat,
    median over repeats of the full-pass time)."""
    best = sum(min(column) for column in zip(*per_batch))
    return best, statistics.median(sum(times) for times in per_batch)


def max_abs_diff(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> float:
    return max(float((x.float() - y.float()).abs().max()) for xs, ys in zip(a, b) for x, y in zip(xs, ys))


# --------------------------------------------------------------------------------- measurements


class Timings:
    """Wall seconds per [repeat][batch] and total process-CPU seconds, per path."""

    def __init__(self) -> None:
        self.wall: dict[str, list[list[float]]] = {key: [] for key in PATHS}
        self.cpu: dict[str, float] = {key: 0.0 for key in PATHS}

    def new_repeat(self, *keys: str) -> None:
        for key in keys:
            self.wall[key].append([])

    def add(self, key: str, clock: Clock) -> None:
        self.wall[key][-1].append(clock.wall)
        self.cpu[key] += clock.cpu


def measure_frozen(bilm: BiLM, ref: "ReferenceBiLM", work: Workload, repeats: int, timings: Timings):
    """Frozen forward, per batch: elmo-bench cold, elmo-bench warm, reference. Returns the outputs
    of the first repeat (elmo-bench warm, reference)."""
    bilm.requires_grad_(False)
    ref.requires_grad_(False)
    ours_out, ref_out = [], []
    for repeat in range(repeats):
        bilm.token_encoder.clear_cache()
        timings.new_repeat("ours_cold", "ours_warm", "ref_fwd")
        for ids in work.batches:
            timings.add("ours_cold", frozen_step(bilm, ids)[0])
            clock, ours = frozen_step(bilm, ids)
            timings.add("ours_warm", clock)
            clock, theirs = frozen_step(ref, ids)
            timings.add("ref_fwd", clock)
            if repeat == 0:
                ours_out.append(ours)
                ref_out.append(theirs)
    return ours_out, ref_out


def measure_train(bilm: BiLM, ref: "ReferenceBiLM", work: Workload, repeats: int, timings: Timings) -> None:
    bilm.requires_grad_(True)
    ref.requires_grad_(True)
    for _ in range(repeats):
        timings.new_repeat("ours_train", "ref_train")
        for ids in work.batches:
            timings.add("ours_train", train_step(bilm, ids))
            timings.add("ref_train", train_step(ref, ids))


def grad_pairs(bilm: BiLM, ref: "ReferenceBiLM"):
    """(name, elmo-bench grad, reference grad) for every parameter, in the reference's layout."""
    enc = bilm.char_encoder
    yield "char_embed", enc.char_embedding.weight.grad, ref.char_embed.grad
    for i, (a, b) in enumerate(zip(enc.convolutions, ref.convs)):
        yield f"conv{i}.weight", a.weight.grad, b.weight.grad
        yield f"conv{i}.bias", a.bias.grad, b.bias.grad
    for k, highway in enumerate(enc.highways):
        pairs = (("transform", highway.transform, ref.highway_transform[k]),
                 ("carry", highway.carry, ref.highway_carry[k]))
        for name, a, b in pairs:
            yield f"highway{k}.{name}.weight", a.weight.grad, b.weight.grad
            yield f"highway{k}.{name}.bias", a.bias.grad, b.bias.grad
    yield "projection.weight", enc.projection.weight.grad, ref.projection.weight.grad
    yield "projection.bias", enc.projection.bias.grad, ref.projection.bias.grad
    for d in range(2):
        for l, layer in enumerate(bilm.lstm.layers):
            fused = torch.cat([layer.weight_ih.grad[d], layer.weight_hh.grad[d]])
            yield f"W_0[{d}][{l}]", fused, ref.lstm_param(ref.W0, d, l).grad
            yield f"B[{d}][{l}]", layer.bias.grad[d], ref.lstm_param(ref.B, d, l).grad
            yield f"W_P_0[{d}][{l}]", layer.weight_proj.grad[d], ref.lstm_param(ref.WP, d, l).grad


def gradient_check(bilm: BiLM, ref: "ReferenceBiLM", ids: torch.Tensor) -> float:
    """max over parameters of max|g_elmo-bench - g_reference| / max|g_reference|, one batch."""
    bilm.requires_grad_(True)
    ref.requires_grad_(True)
    for model in (bilm, ref):
        model.zero_grad(set_to_none=True)
        layers, _ = model(ids)
        sum(layer.sum() for layer in layers).backward()
    worst = 0.0
    for _name, a, b in grad_pairs(bilm, ref):
        scale = float(b.abs().max())
        if scale > 0:
            worst = max(worst, float((a - b).abs().max()) / scale)
    bilm.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    return worst


def measure_bf16(bilm: BiLM, work: Workload, fp32_out: list, timings: Timings, max_tokens: int) -> dict:
    """elmo-bench frozen forward under CPU bf16 autocast on every k-th batch (about `max_tokens`
    tokens; bf16 matmuls are slow on CPUs without native bf16), against fp32 on the same batches."""
    bilm.requires_grad_(False)
    every = max(1, -(-work.tokens // max_tokens)) if max_tokens > 0 else 1
    subset = list(range(0, len(work.batches), every))
    cold, warm, out = [], [], []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        frozen_step(bilm, work.batches[0])
        bilm.token_encoder.clear_cache()
        for b in subset:
            cold.append(frozen_step(bilm, work.batches[b])[0].wall)
            clock, layers = frozen_step(bilm, work.batches[b])
            warm.append(clock.wall)
            out.append(layers)
    bilm.token_encoder.clear_cache()  # the cache now holds bf16 rows
    tokens = work.tokens_in(subset)

    def fp32_seconds(key: str) -> float:
        return sum(min(repeat[b] for repeat in timings.wall[key]) for b in subset)

    return {
        "batches": subset,
        "tokens": tokens,
        "cold_tokens_per_s": tokens / sum(cold),
        "warm_tokens_per_s": tokens / sum(warm),
        "fp32_cold_tokens_per_s": tokens / fp32_seconds("ours_cold"),
        "fp32_warm_tokens_per_s": tokens / fp32_seconds("ours_warm"),
        "max_abs_diff_vs_fp32": max_abs_diff(out, [fp32_out[b] for b in subset]),
        "max_abs_value_fp32": max(float(x.abs().max()) for b in subset for x in fp32_out[b]),
    }


# ---------------------------------------------------------------------------------------- report


def path_rows(timings: Timings, work: Workload, flops: dict[str, float], peak: float, repeats: int) -> dict:
    """Per path: tokens/s and FLOP rates. FLOPs 'needed' = the work the path has to do for one pass
    (boundary tokens counted, padding not; fwd+bwd = 3x forward): the reference the full §7b cost
    per token; elmo-bench the LSTM per token plus the char encoder once per token type (cold: each
    distinct type of the data; warm: none; fwd+bwd: each distinct type of each batch)."""
    n = work.tokens_with_boundaries
    needed = {
        "ours_cold": flops["lstm"] * n + flops["encoder"] * work.distinct_types,
        "ours_warm": flops["lstm"] * n,
        "ref_fwd": flops["total"] * n,
        "ours_train": 3 * (flops["lstm"] * n + flops["encoder"] * work.distinct_types_per_batch),
        "ref_train": 3 * flops["total"] * n,
    }
    rows = {}
    for key in PATHS:
        best, median = summarize(timings.wall[key])
        nominal = (3 if key.endswith("train") else 1) * flops["total"] * n
        rows[key] = {
            "seconds_best": best,
            "seconds_median_pass": median,
            "seconds_all": timings.wall[key],
            "cpu_seconds_per_pass": timings.cpu[key] / repeats,
            "tokens_per_s": work.tokens / best,
            "tokens_per_s_median_pass": work.tokens / median,
            "needed_gflop": needed[key] / 1e9,
            "needed_gflops_per_s": needed[key] / best / 1e9,
            "fraction_of_mm_peak": needed[key] / best / 1e9 / peak,
            "nominal_gflops_per_s": nominal / best / 1e9,
        }
    return rows


def speedups(rows: dict, timings: Timings) -> dict[str, dict[str, float]]:
    pairs = {
        "frozen_warm": ("ours_warm", "ref_fwd"),
        "frozen_cold": ("ours_cold", "ref_fwd"),
        "train": ("ours_train", "ref_train"),
    }
    return {
        name: {
            "best": rows[ours]["tokens_per_s"] / rows[theirs]["tokens_per_s"],
            "median": rows[ours]["tokens_per_s_median_pass"] / rows[theirs]["tokens_per_s_median_pass"],
            "cpu_time": timings.cpu[theirs] / timings.cpu[ours],
        }
        for name, (ours, theirs) in pairs.items()
    }


def print_report(result: dict) -> None:
    flops, rows, ratio, args = result["flops_per_token"], result["paths"], result["speedups"], result["config"]
    print(
        f"elmo-bench biLM benchmark: {result['shape']}, random weights (seed {args['seed']})"
    )
    print(
        f"torch {result['torch']}, {result['threads']} thread(s) ({result['threads_note']}), {result['cpu']}, "
        f"load avg {result['load_avg'][0]:.2f} -> {result['load_avg'][1]:.2f}"
    )
    padding = 100 * (1 - result["tokens_with_boundaries"] / result["padded_positions"])
    print(
        f"data: {result['sentences']} sentences of {Path(result['conll']).name}, {result['tokens']} tokens "
        f"({result['tokens_with_boundaries']} with <S>/</S>), {result['distinct_types']} distinct; "
        f"{result['batches']} batches <= {args['batch_tokens']} padded tokens ({padding:.1f}% padding); "
        f"{args['repeats']} repeats"
    )
    print(
        f"FLOPs/token (§7b, 2 per multiply-add): char encoder {flops['encoder'] / 1e6:.1f} M + LSTM "
        f"{flops['lstm'] / 1e6:.1f} M = {flops['total'] / 1e6:.1f} M; fp32 torch.mm {args['mm_size']}^2: "
        f"{result['mm_peak_gflops']:.1f} GFLOP/s"
    )
    print()
    print(f"{'path':36s} {'tok/s':>7s} {'tok/s':>7s} {'needed':>7s} {'GFLOP/s':>8s} {'% of':>6s} {'§7b-eq':>8s}")
    print(f"{'':36s} {'best':>7s} {'median':>7s} {'GFLOP':>7s} {'needed':>8s} {'mm':>6s} {'GFLOP/s':>8s}")
    print("-" * 84)
    for key, label in PATHS.items():
        row = rows[key]
        print(
            f"{label:36s} {row['tokens_per_s']:7.0f} {row['tokens_per_s_median_pass']:7.0f} "
            f"{row['needed_gflop']:7.1f} {row['needed_gflops_per_s']:8.1f} "
            f"{100 * row['fraction_of_mm_peak']:5.1f}% {row['nominal_gflops_per_s']:8.1f}"
        )
    print()
    print(f"{'speed-up elmo-bench / reference':34s} {'best':>7s} {'median':>7s} {'CPU time':>9s}")
    targets = {"frozen_warm": 4.0, "train": 1.5}
    names = {"frozen_warm": "frozen fwd, warm cache", "frozen_cold": "frozen fwd, cold cache", "train": "fwd+bwd"}
    for key, name in names.items():
        r = ratio[key]
        target = ""
        if key in targets:
            target = f"   target >= {targets[key]:g}x: {'OK' if r['best'] >= targets[key] else 'BELOW TARGET'}"
        print(f"  {name:32s} {r['best']:6.2f}x {r['median']:6.2f}x {r['cpu_time']:8.2f}x{target}")
    ok = "OK" if result["diff_ok"] else "FAIL"
    print(
        f"max |elmo-bench - reference| over all 3 layers: frozen path {result['max_abs_diff']:.2e}, "
        f"trainable path {result['max_abs_diff_trainable_path']:.2e} (tol {args['tol']:.0e}: {ok})"
    )
    print(f"gradients, all parameters: max |g_elmo-bench - g_ref| / max |g_ref| = {result['grad_max_rel_diff']:.2e}")
    if result["reference_vs_tf_fixture"] is None:
        print("reference vs upstream TensorFlow fixture: skipped (fixtures not found; see --fixtures)")
    else:
        print(
            "reference vs upstream TensorFlow outputs (allennlp test model, batch 0, top layer): "
            f"max abs err {result['reference_vs_tf_fixture']:.2e}"
        )
    bf16 = result["bf16"]
    if bf16:
        print(
            f"bf16 autocast, elmo-bench frozen fwd ({bf16['tokens']} tokens in {len(bf16['batches'])} batches): "
            f"cold {bf16['cold_tokens_per_s']:.0f} tok/s "
            f"({bf16['cold_tokens_per_s'] / bf16['fp32_cold_tokens_per_s']:.2f}x fp32), "
            f"warm {bf16['warm_tokens_per_s']:.0f} tok/s "
            f"({bf16['warm_tokens_per_s'] / bf16['fp32_warm_tokens_per_s']:.2f}x fp32); "
            f"max |bf16 - fp32| {bf16['max_abs_diff_vs_fp32']:.3g} "
            f"(fp32 values within +-{bf16['max_abs_value_fp32']:.2f})"
        )
    print()
    print(
        "tok/s: corpus tokens (without <S>/</S>) per second; best = sum over batches of each batch's fastest\n"
        "repeat, median = median full pass. needed GFLOP: work the path must do in one pass (boundary tokens\n"
        "counted, padding not, fwd+bwd = 3x fwd): reference = full §7b cost per token; elmo-bench = LSTM per\n"
        "token + char encoder once per token type (cold: per distinct type of the data, warm: none, fwd+bwd:\n"
        "per distinct type of each batch). GFLOP/s and % of mm from best times. §7b-eq GFLOP/s = full §7b\n"
        "cost of every token / time, i.e. the rate a path would need without its savings."
    )
    print(f"wall time {result['wall_seconds']:.0f} s")


# ------------------------------------------------------------------------------------------ main


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ELMo biLM throughput: elmo-bench vs a per-timestep reference")
    parser.add_argument("--sentences", type=int, default=600, help="first N CoNLL-2003 train sentences (600)")
    parser.add_argument("--batch-tokens", type=int, default=1024,
                        help="padded-token budget per batch, <S>/</S> included (1024)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed passes per path; each batch's fastest is kept (2)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads; 0 = auto: one per core the load average leaves free (default)")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this file")
    parser.add_argument("--conll", type=Path, default=None,
                        help="CoNLL file (default: $ELMO_BENCH_DATA/conll2003/eng.train, "
                        "else <repo>/../shared/data/conll2003/eng.train)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: also time elmo-bench's frozen forward under CPU bf16 autocast")
    parser.add_argument("--bf16-tokens", type=int, default=1000,
                        help="with --precision bf16: time about this many tokens (every k-th batch; 0 = all)")
    parser.add_argument("--fixtures", type=Path, default=None,
                        help="parity fixtures to check the reference against TF (default <repo>/../shared/fixtures)")
    parser.add_argument("--options", type=Path, default=None,
                        help="options.json of the shape to time (default: the official small ELMo's), e.g. the"
                        " export of an elmo-bench-pretrain run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-5, help="max allowed abs output difference (1e-5)")
    parser.add_argument("--mm-size", type=int, default=2048, help="size of the square matmul probe (2048)")
    args = parser.parse_args(argv)
    if args.sentences < 1 or args.batch_tokens < 1 or args.repeats < 1:
        parser.error("--sentences, --batch-tokens and --repeats must be >= 1")
    return args


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    args = parse_args(argv)
    started, load_start = time.perf_counter(), load_average()
    threads, threads_note = (args.threads, "--threads") if args.threads > 0 else auto_threads()
    torch.set_num_threads(threads)
    conll = args.conll or default_conll_path()
    if not conll.is_file():
        print(f"error: CoNLL file not found: {conll} (use --conll or $ELMO_BENCH_DATA)", file=sys.stderr)
        return 2
    sentences = read_conll_sentences(conll, args.sentences)
    if not sentences:
        print(f"error: no sentences in {conll}", file=sys.stderr)
        return 2
    work = Workload.build(sentences, args.batch_tokens)

    fixture_err = check_reference_on_fixture(args.fixtures or shared_dir() / "fixtures")
    options = json.loads(args.options.read_text(encoding="utf-8")) if args.options else None
    bilm = build_bilm(args.seed, options).eval()
    ref = ReferenceBiLM(bilm).eval()
    flops = flops_per_token(bilm.options)
    peak = matmul_gflops(args.mm_size)

    # Warm-up (allocator, oneDNN primitives) on the smallest batch, then drop the token cache.
    grad_rel = gradient_check(bilm, ref, work.batches[0])
    bilm.requires_grad_(False)
    frozen_step(bilm, work.batches[0])
    frozen_step(ref, work.batches[0])

    timings = Timings()
    ours_out, ref_out = measure_frozen(bilm, ref, work, args.repeats, timings)
    measure_train(bilm, ref, work, args.repeats, timings)
    with torch.no_grad():  # parameters still trainable: the uncached, per-batch-deduplicated path
        trainable_out = [bilm(ids)[0] for ids in work.batches]
    bf16 = measure_bf16(bilm, work, ours_out, timings, args.bf16_tokens) if args.precision == "bf16" else None
    peak = max(peak, matmul_gflops(args.mm_size))

    rows = path_rows(timings, work, flops, peak, args.repeats)
    diff, diff_trainable = max_abs_diff(ours_out, ref_out), max_abs_diff(trainable_out, ref_out)
    diff_ok = diff <= args.tol and diff_trainable <= args.tol
    fixture_ok = fixture_err is None or fixture_err <= 1e-5
    result = {
        "config": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "conll": str(conll),
        "torch": torch.__version__,
        "threads": threads,
        "threads_note": threads_note,
        "cpu": cpu_name(),
        "load_avg": [load_start, load_average()],
        "sentences": len(sentences),
        "tokens": work.tokens,
        "tokens_with_boundaries": work.tokens_with_boundaries,
        "padded_positions": work.padded_positions,
        "distinct_types": work.distinct_types,
        "distinct_types_per_batch_sum": work.distinct_types_per_batch,
        "batches": len(work.batches),
        "shape": describe(bilm.options, args.options),
        "flops_per_token": flops,
        "mm_peak_gflops": peak,
        "paths": rows,
        "speedups": speedups(rows, timings),
        "max_abs_diff": diff,
        "max_abs_diff_trainable_path": diff_trainable,
        "diff_ok": diff_ok,
        "grad_max_rel_diff": grad_rel,
        "reference_vs_tf_fixture": fixture_err,
        "bf16": bf16,
        "wall_seconds": time.perf_counter() - started,
    }
    print_report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if not diff_ok:
        print(f"FAIL: outputs differ by more than {args.tol:g}", file=sys.stderr)
    if not fixture_ok:
        print(f"FAIL: the reference is {fixture_err:.2e} off the TensorFlow fixture", file=sys.stderr)
    return 0 if diff_ok and fixture_ok else 1


if __name__ == "__main__":
    sys.exit(main())
