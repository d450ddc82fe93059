"""The import graph keeps its shape (docs: ../DESIGN "Checking the shape"): arrows point
from web and CLI to services to devices, storage and sync, never back up; central speaks
only the contract with the stations, never their services. Read from the source with
``ast`` (no import runs), so a forbidden import fails here before anyone notices."""

from __future__ import annotations

import ast
from pathlib import Path

EDGE = Path(__file__).resolve().parent.parent / "edge"

FORBIDDEN = {
    # central never imports the station's services, devices or storage
    "edge.central": (
        "edge.web", "edge.station", "edge.cli", "edge.storage", "edge.accounts",
        "edge.orders", "edge.handover", "edge.camera", "edge.scale", "edge.config",
    ),
    # lower layers never reach up to the web, the wiring or the CLI
    "edge.storage": ("edge.web", "edge.station", "edge.cli", "edge.central"),
    "edge.sync": ("edge.web", "edge.station", "edge.cli", "edge.central"),
    "edge.printer": ("edge.web", "edge.station", "edge.cli", "edge.central", "edge.sync"),
    "edge.camera": ("edge.web", "edge.station", "edge.cli", "edge.central", "edge.sync"),
    "edge.accounts": ("edge.web", "edge.station", "edge.cli", "edge.central", "edge.sync"),
    "edge.orders": ("edge.web", "edge.station", "edge.cli", "edge.central", "edge.handover"),
    "edge.handover": ("edge.web", "edge.station", "edge.cli", "edge.central", "edge.orders"),
    "edge.station": ("edge.web", "edge.cli", "edge.central"),
    # the scale is the model room: protocols and a reader, on the small shared modules only
    "edge.scale": (
        "edge.web", "edge.station", "edge.cli", "edge.central", "edge.storage",
        "edge.sync", "edge.printer", "edge.camera", "edge.config",
    ),
}  # fmt: skip


def _module(path: Path) -> str:
    parts = path.relative_to(EDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "edge" or name.startswith("edge.")}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_import_points_the_wrong_way() -> None:
    files = sorted(EDGE.rglob("*.py"))
    assert len(files) > 100  # the walk sees the whole package
    wrong = []
    for path in files:
        module = _module(path)
        for layer, banned in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            for target in _imports(path):
                if any(_within(target, b) for b in banned):
                    wrong.append(f"{module} imports {target} ({layer} may not import it)")
    assert wrong == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from edge.web.app import create_app\nimport edge.station\n")
    assert _imports(source) == {"edge.web.app", "edge.station"}
