"""Crash isolation: models run in a worker process per framework, under a memory limit and a timeout.

A model file from a pull request can crash its runtime (a segfault or an abort in C++), exhaust memory or
hang. In a worker, that costs only the artifact that did it: its checks fail with what happened (the
signal, the memory limit, the timeout), the worker is restarted, and the session goes on. The parent
keeps the same Runner interface (`IsolatedRunner`); only arrays and small values cross the pipe.

Modules: `limits` (the settings), `worker` (what runs in the child), `workers` (starting, asking,
restarting), `runner` (the Runner that forwards to a worker).
"""
