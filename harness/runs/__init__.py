"""Runs: an evaluation from its configuration to its run directory, and back.

- `config`: `EvalConfig`, every evaluation setting (the `vrbench eval` flags) and presets;
- `runner`: `evaluate`, tasks x backend -> a resumable run directory;
- `metrics`: per-task and per-domain summaries, and the metrics followed over training;
- `store`: atomic writes, JSON lines, the run-directory lock;
- `results`: provenance, validation of run files, and the index of a tree of runs.
"""
