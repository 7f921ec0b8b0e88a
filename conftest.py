# The project's root conftest: pytest_plugins may only be declared here (pytest forbids it below the root).
# `pytester` runs pytest inside the tests, the way a user would, to test the plugin end to end.
pytest_plugins = ("pytester",)
