"""Latency and throughput budgets (`budgets:` in the manifest), one concern a module:

- `spec`: the budgets an artifact declares, with where each limit came from;
- `percentiles`: percentiles from raw samples and how many samples a percentile needs;
- `policy`: budget policies whose `.fails()` returns a message or None;
- `measure`: the measurement protocol (session creation, first call, warm-up, steady state);
- `compare`: the statistics of a change against a baseline;
- `fingerprint` and `baseline`: the environment a figure was taken in, and stored baselines;
- `check`: the budget checks as the gate runs them, through pytest-benchmark;
- `declare`: the same checks as collection sees them (`check` is imported when a budget is first measured).

What runs a model on the CPU or a GPU for timing is each backend's `timing` module (`backends.open_target`).

Nothing here imports an ML framework at import time."""
