"""Edge station for village produce collection points."""

import os as _os

__version__ = "0.2.0"

if _os.environ.get("EDGE_TEST_CLOCK"):  # the test suite's calendar pass only (edge.testclock)
    from edge import testclock as _testclock

    _testclock.install()
