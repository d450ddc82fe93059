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


@pytest.fixture(autouse=True)
def each_test_at_the_test_clock() -> None:
    """EDGE_TEST_CLOCK_EACH=1 (with EDGE_TEST_CLOCK): every test starts at the instant."""
    if os.environ.get("EDGE_TEST_CLOCK_EACH") == "1":
        testclock.restart()
