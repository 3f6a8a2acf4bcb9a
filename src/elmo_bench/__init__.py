"""elmo-bench: feature ensemble vs fine-tuning of ELMo, measured task by task."""
import os

# OpenMP reads its wait policy once, when torch loads it, so it is set before anything imports torch:
# idle threads sleep instead of spinning, which keeps runs that share cores from stalling each other
# (benchmarks/README.md, "Threads under contention"). An explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
