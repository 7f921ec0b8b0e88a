# The project's root conftest: pytest_plugins may only be declared here (pytest forbids it below the root).
# `pytester` runs pytest inside the tests, the way a user would, to test the plugin end to end.
pytest_plugins = ("pytester",)

# Workers import only the standard library, site-packages and model_checks (isolation/workers.py); the crash
# hooks the tests send them live in `fixtures`, which is linked into the workers' private import directory.
import os
from pathlib import Path

os.environ.setdefault("MODEL_CHECKS_WORKER_IMPORTS", str(Path(__file__).resolve().parent / "fixtures"))
