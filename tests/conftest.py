from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import testclock
from rigs.helpers import Broker, Pki, session_pki
from tests.browser import browser  # noqa: F401  (fixture)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return session_pki(tmp_path_factory)


@pytest.fixture
def tls_broker(tls_pki: Pki, tmp_path: Path) -> Iterator[Broker]:
    """The shipped TLS configuration running on a free port (see Broker)."""
    with Broker(tmp_path / "tls-broker", tls=tls_pki.broker_tls) as b:
        yield b


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """make test runs the suite twice at once; each long test about no date runs in one
    pass: the calendar pass (EDGE_TEST_CLOCK set) skips those marked ``real_clock_only``,
    the real-clock pass (EDGE_TEST_PASS=real) those marked ``calendar_pass_only``."""
    if os.environ.get("EDGE_TEST_CLOCK"):
        marker, reason = "real_clock_only", "the real-clock pass runs it (make test)"
    elif os.environ.get("EDGE_TEST_PASS") == "real":
        marker, reason = "calendar_pass_only", "the calendar pass runs it (make test)"
    else:
        return
    skip = pytest.mark.skip(reason=f"{marker}: {reason}")
    for item in items:
        if item.get_closest_marker(marker):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def each_test_at_the_test_clock() -> None:
    """EDGE_TEST_CLOCK_EACH=1 (with EDGE_TEST_CLOCK): every test starts at the instant."""
    if os.environ.get("EDGE_TEST_CLOCK_EACH") == "1":
        testclock.restart()
