"""Metric rules that need no torch, shared by the tasks (scoring a run) and the report (rescoring resamples)."""
