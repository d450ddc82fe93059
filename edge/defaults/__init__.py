"""The default profiles that ship inside the package (package data, see pyproject.toml).

- ``scales/<name>.toml``: scale profiles, one per indicator family (``[scale] profile``);
- ``printers/<name>.toml``: printer profiles (``[printer] profile``);
- ``grading/<product>.toml``: grade rules (``[grading] rules_dir``).

They are found beside this module, so a checkout, an editable install and a plain
``pip install`` all use the same files. A station that wants its own copies sets
``profiles_dir`` / ``rules_dir`` to another folder.
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent
"""This package's folder: where the shipped profiles live once installed."""

SCALE_PROFILES = DEFAULTS_DIR / "scales"
PRINTER_PROFILES = DEFAULTS_DIR / "printers"
GRADING_RULES = DEFAULTS_DIR / "grading"
