"""The worker's environment: TensorFlow's C++ logging below errors is silenced in workers unless the user set it
(issue 21: its info lines landed in every user's log on machines without a GPU)."""

import pytest

from model_checks.isolation.workers import Sandbox


@pytest.fixture
def sandbox():
    s = Sandbox()
    yield s
    s.remove()


def test_tensorflow_info_and_warnings_are_silenced_in_workers(sandbox, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert sandbox.env()["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_a_users_own_log_level_wins(sandbox, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert sandbox.env()["TF_CPP_MIN_LOG_LEVEL"] == "0"
