"""Serving: an Open Inference Protocol (KServe v2 REST) service for any artifact, an open-loop load
generator, and the `serving` check that runs both. Needs `pip install 'model-checks[serving]'`; nothing
here is imported until a serving test or command runs."""

from __future__ import annotations
