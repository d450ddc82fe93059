from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import browser  # noqa: F401  (fixture)
from tests.helpers import Broker, tls_broker, tls_pki  # noqa: F401  (fixtures)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()
