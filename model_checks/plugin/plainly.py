"""Imported first by the plugin (model_checks.plugin): takes this package off the list of modules pytest's import
hook assertion-rewrites, before the plugin imports the rest of it.

pytest rewrites every module of a plugin's distribution on import and caches the result beside the source; where
no bytecode may be written (PYTHONDONTWRITEBYTECODE=1, read-only installs) it parses, rewrites and compiles each
of them again on every run (the plugin's own imports alone are some twenty modules, a tenth of a second on a
busy 2-core machine). The plugin reports through pytest.fail and skip, never through a failing assert, so
rewriting gains nothing. No public API takes a package off the list pytest marks (`pytest.register_assert_rewrite`
only adds): this removes it from the hook's `_must_rewrite` (private; pytest 8 and 9, pinned by
tests/plugin/test_rewrite.py). pytest installs the hook in `sys.meta_path` and marks the distribution's modules
before it imports the plugin, so the hook is found there; this module and the two packages above it stay
rewritten. A user's tests and conftests keep pytest's rewriting."""

from __future__ import annotations

import sys

PACKAGE = __name__.partition(".")[0]


def import_plainly() -> None:
    for finder in sys.meta_path:
        if type(finder).__name__ != "AssertionRewritingHook":
            continue
        marked = getattr(finder, "_must_rewrite", None)
        if isinstance(marked, set) and PACKAGE in marked:
            marked.discard(PACKAGE)
            cached = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cached, dict):
                cached.clear()


import_plainly()
