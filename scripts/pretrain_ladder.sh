#!/usr/bin/env bash
# Issue 53's encoder ladder: the long pretraining of the `mid` biLM (docs/pretraining.md), niced, one thread,
# in its own session (setsid) so that it outlives the shell that started it. Run this same script again to
# resume after any interruption (a kill, a reboot): the run carries on from $OUT/checkpoint.pt with the same
# data order. It does nothing while the run is still alive.
#
#   scripts/pretrain_ladder.sh            # start or resume
#   tail -c 2000 /work/main/pretrained/cpu-mid.log; python scripts/pretrain_scaling.py
set -euo pipefail
CODE=$(cd "$(dirname "$0")/.." && pwd)        # the checkout whose code runs
ROOT=${ELMO_BENCH_ROOT:-/work/main}            # its .venv, and pretrained/ (git-ignored, kept with the machine)
DATA=${ELMO_BENCH_DATA:-/work/shared/data}
NAME=cpu-mid
OUT=$ROOT/pretrained/$NAME
mkdir -p "$ROOT/pretrained"
if [[ -f $OUT.pid ]] && kill -0 "$(cat "$OUT.pid")" 2>/dev/null \
   && tr '\0' ' ' < "/proc/$(cat "$OUT.pid")/cmdline" | grep -q "output_dir=$OUT"; then
  echo "already running: pid $(cat "$OUT.pid"), log $OUT.log"; exit 0
fi
# The schedule: linear warm-up over 300 updates of 2,000 words, then a linear decay that reaches zero at
# max_tokens (30M words, about 2 epochs of the 15.1M-word corpus), which ends the run; held-out perplexity
# every 2M words. Held-out lines and vocabulary are cpu-small's (same corpus list, seed, sizes).
cd "$CODE"
setsid nohup nice -n 19 env OMP_NUM_THREADS=1 PYTHONPATH="$CODE/src" ELMO_BENCH_DATA="$DATA" \
  "$ROOT/.venv/bin/elmo-bench-pretrain" name=$NAME shape=mid bptt_steps=20 dropout=0.1 lr=0.001 \
  warmup_steps=300 lr_decay=linear max_tokens=30000000 max_epochs=3 max_train_seconds=null \
  eval_every_tokens=2000000 threads=1 output_dir="$OUT" >> "$OUT.log" 2>&1 &
echo $! > "$OUT.pid"
echo "started: pid $!, log $OUT.log"
