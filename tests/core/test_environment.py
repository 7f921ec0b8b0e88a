"""core/environment.py: variables set for a while are put back as they were, set or unset, also after an error."""

import os

import pytest

from model_checks.core.environment import environment, replace, restore


def test_each_variable_is_put_back_as_it_was(monkeypatch):
    monkeypatch.setenv("MC_TEST_SET", "before")
    monkeypatch.delenv("MC_TEST_UNSET", raising=False)
    saved = replace({"MC_TEST_SET": "during", "MC_TEST_UNSET": "during"})
    assert (os.environ["MC_TEST_SET"], os.environ["MC_TEST_UNSET"]) == ("during", "during")
    restore(saved)
    assert os.environ["MC_TEST_SET"] == "before" and "MC_TEST_UNSET" not in os.environ


def test_the_block_gives_them_back_after_an_error(monkeypatch):
    monkeypatch.delenv("MC_TEST_UNSET", raising=False)
    with pytest.raises(RuntimeError), environment(MC_TEST_UNSET="during"):
        assert os.environ["MC_TEST_UNSET"] == "during"
        raise RuntimeError
    assert "MC_TEST_UNSET" not in os.environ
