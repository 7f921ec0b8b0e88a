import pytest


@pytest.fixture
def artifact():
    return {"name": "build.tar.gz"}
