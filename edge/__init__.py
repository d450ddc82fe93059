"""Edge station for village produce collection points."""

__version__ = "0.2.0"
