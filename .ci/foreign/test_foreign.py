import pytest


def test_own_artifact_fixture(artifact):
    assert artifact["name"] == "build.tar.gz"


@pytest.mark.parametrize("artifact", [{"name": "a"}, {"name": "b"}])
def test_own_parametrization(artifact):
    assert artifact["name"] in "ab"


@pytest.mark.nightly
def test_own_nightly_marker():
    pass
