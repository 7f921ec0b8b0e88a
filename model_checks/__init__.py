"""model-checks: a pytest gate for exported and optimized model artifacts.

Importing the package imports no ML framework; each is loaded when a check first needs it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
