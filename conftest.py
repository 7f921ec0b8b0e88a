# The project's root conftest: pytest_plugins may only be declared here (pytest forbids it below the root).
# `pytester` runs pytest inside the tests, the way a user would, to test the plugin end to end.
pytest_plugins = ("pytester",)

# Workers import only the standard library, site-packages and model_checks (isolation/workers.py); the crash
# hooks the tests send them live in `fixtures`, which is linked into the workers' private import directory.
import os
from pathlib import Path

os.environ.setdefault("MODEL_CHECKS_WORKER_IMPORTS", str(Path(__file__).resolve().parent / "fixtures"))

# pytester's in-process runs put sys.modules back as they found it; a check module first imported inside one such run
# would be dropped after it while the registry's cache kept its old functions, and the next run's worker could not
# pickle them ("not the same object as model_checks.checks.roundtrip.converted_outputs"). Importing every check
# before any test runs keeps one copy of each for the whole session, whatever order the tests run in.
from model_checks.checks import registry  # noqa: E402

registry()
