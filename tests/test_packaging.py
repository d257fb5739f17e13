"""The wheel a user installs carries every file spectok reads from its own folder."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.remote_data  # pip fetches the build backend (setuptools, setuptools_scm) from PyPI
def test_the_wheel_ships_the_model_the_example_and_the_configurations(tmp_path):
    """An editable install reads spectok/data from the source tree, so only a
    built wheel shows whether the shipped weights reach a ``pip install``."""
    if not (ROOT / "setup.cfg").is_file():
        pytest.skip("needs the source tree")
    # Build from a copy: an in-tree build leaves build/lib behind, and stale
    # modules there would go into the next wheel built from the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.rst", "LICENSE.rst"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "spectok", source / "spectok",
                    ignore=shutil.ignore_patterns("__pycache__", "_version.py"))
    env = {**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": "0.1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, env=env)
    (wheel,) = (tmp_path / "dist").glob("spectok-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    data = {f"spectok/data/{path.name}" for path in (ROOT / "spectok" / "data").iterdir()
            if path.is_file()}
    assert {"spectok/data/spectok-small.safetensors", "spectok/data/spectok-small.json",
            "spectok/data/example_manga_galaxy.fits"} <= data
    assert not data - packed, f"left out of the wheel: {sorted(data - packed)}"
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "spectok").rglob("*.py")
               if "__pycache__" not in path.parts and path.name != "_version.py"}
    assert not modules - packed, f"left out of the wheel: {sorted(modules - packed)}"
