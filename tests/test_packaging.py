"""A plain (non-editable) install finds its default scale, printer and grading profiles,
because they ship inside the package (edge/defaults/, package data in pyproject.toml).

The wheel is built from a copy of the source with this venv's setuptools (no network),
installed with ``--no-index`` into a fresh venv in tmp_path whose only link to this venv
is a .pth line appending this venv's site-packages (the already installed dependencies).
Every command runs from a folder outside the checkout, so nothing of the source tree can
be found by accident: the test fails if a profile is missing from the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from edge.defaults import DEFAULTS_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_STATION = ROOT / "firmware-config" / "station.example.toml"
EXAMPLE_LOT = ROOT / "examples" / "labels" / "lot.json"


@dataclass(frozen=True)
class Installed:
    venv: Path
    site_packages: Path  # the fresh venv's own
    work: Path  # an empty folder outside the checkout: every command's cwd

    def edge(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        return _run([self.venv / "bin" / "edge", *argv], cwd=self.work)


def _env() -> dict[str, str]:
    """This environment without anything that could put the source tree on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env["PIP_NO_INPUT"] = "1"
    return env


def _run(argv: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def _copy_source(dest: Path) -> None:
    """What the wheel is built from: a copy, so the build's build/ and *.egg-info never
    land in the shared checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(
        ROOT / "edge", dest / "edge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    src, dist, venv, work = base / "src", base / "dist", base / "venv", base / "work"
    _copy_source(src)
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    _ok(
        _run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src],
            base,
        )
    )
    (wheel,) = dist.glob("edge_station-*.whl")

    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv], base))
    new_python = venv / "bin" / "python"
    _ok(_run([*pip, "--python", new_python, "install", "--no-deps", "--no-index", wheel], base))
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(_ok(_run([new_python, "-c", purelib], work)).strip())
    assert site_packages.is_relative_to(venv)
    # The dependencies (pydantic, pillow, ...) come from this venv, appended after the
    # fresh venv's own site-packages; a plain path line runs none of this venv's .pth
    # files, so its editable finder for the checkout's edge stays out.
    (site_packages / "zz_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return Installed(venv=venv, site_packages=site_packages, work=work)


def test_the_installed_package_is_the_one_imported(installed: Installed) -> None:
    where = _ok(
        _run(
            [installed.venv / "bin" / "python", "-c", "import edge; print(edge.__file__)"],
            installed.work,
        )
    ).strip()
    assert Path(where) == installed.site_packages / "edge" / "__init__.py"
    assert not Path(where).is_relative_to(ROOT)


def test_every_default_profile_is_in_the_wheel(installed: Installed) -> None:
    shipped = installed.site_packages / "edge" / "defaults"
    wanted = sorted(p.relative_to(DEFAULTS_DIR) for p in DEFAULTS_DIR.glob("*/*.toml"))
    assert {p.parts[0] for p in wanted} == {"scales", "printers", "grading"}
    for rel in wanted:
        assert (shipped / rel).read_bytes() == (DEFAULTS_DIR / rel).read_bytes(), rel
    # The grading backbone and its licence notice: no station fetches a model.
    for name in ("efficientnet-lite0-192.onnx", "NOTICE"):
        backbone = Path("grading") / "backbone" / name
        assert (shipped / backbone).read_bytes() == (DEFAULTS_DIR / backbone).read_bytes()


def test_config_show_names_the_profiles_inside_the_installed_package(
    installed: Installed,
) -> None:
    shipped = installed.site_packages / "edge" / "defaults"
    cfg = json.loads(_ok(installed.edge("config", "show")))
    assert Path(cfg["scale"]["profiles_dir"]) == shipped / "scales"
    assert Path(cfg["printer"]["profiles_dir"]) == shipped / "printers"
    assert Path(cfg["grading"]["rules_dir"]) == shipped / "grading"
    assert (shipped / "scales" / "stgs.toml").is_file()
    assert (shipped / "printers" / "generic-58mm.toml").is_file()
    assert {p.stem for p in (shipped / "grading").glob("*.toml")} >= {"banana", "potato"}

    # Profiles named in a station file are found in the package too: the 80 mm Epson
    # profile gives its paper width, which nothing but that file says.
    station = installed.work / "station.toml"
    station.write_text(
        '[scale]\ntype = "simulated"\nprofile = "xk3190-w"\n'
        '[printer]\ntype = "file"\nprofile = "epson-tm-t20ii"\n',
        encoding="utf-8",
    )
    cfg = json.loads(_ok(installed.edge("config", "show", station)))
    assert cfg["printer"]["paper_dots"] == 576
    assert cfg["scale"]["profile"] == "xk3190-w"
    # and a misspelt one is refused with the package's own list of names
    station.write_text('[printer]\ntype = "file"\nprofile = "epson-tm-t20"\n', encoding="utf-8")
    refused = installed.edge("config", "check", station)
    assert refused.returncode == 1, refused.stderr
    assert "did you mean 'epson-tm-t20ii'?" in refused.stderr
    assert str(shipped / "printers") in refused.stderr


def test_config_check_of_the_example_station(installed: Installed) -> None:
    example = installed.work / "station.example.toml"
    shutil.copy2(EXAMPLE_STATION, example)
    out = _ok(installed.edge("config", "check", example))
    assert out.strip() == (f"{example}: OK (site lai-chau-sin-ho-01, scale serial, printer uri)")


def test_label_preview_from_the_installed_package(installed: Installed) -> None:
    data = installed.work / "lot.json"
    shutil.copy2(EXAMPLE_LOT, data)
    out = _ok(installed.edge("label", "preview", "--kind", "lot", "--data", data, "--out", "x.png"))
    png = installed.work / "x.png"
    assert out.startswith("x.png: lot label, 384 x ")
    with Image.open(png) as img:
        img.verify()
        assert img.format == "PNG"
    with Image.open(png) as img:
        assert img.width == 384 and img.height > 100
        assert img.convert("L").getextrema() == (0, 255)  # black print on white paper
    assert (installed.work / "var" / "site.key").stat().st_size == 32
