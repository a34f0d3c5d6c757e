"""The npe2 manifest (napari.yaml): every ``python_name`` imports and resolves; ``npe2 validate`` passes."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "src" / "napari_bcdi_dl" / "napari.yaml"


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def _commands() -> list[dict]:
    return _manifest()["contributions"]["commands"]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: c["id"])
def test_python_name_imports_and_resolves(command):
    module_name, _, attr = command["python_name"].partition(":")
    assert attr, f"{command['id']}: python_name must be 'module:attribute'"
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert callable(obj), f"{command['python_name']} is not callable"


def test_every_contribution_points_at_a_declared_command():
    m = _manifest()
    ids = {c["id"] for c in m["contributions"]["commands"]}
    refs = [r["command"] for key in ("readers", "writers", "sample_data", "widgets")
            for r in m["contributions"].get(key, [])]
    assert set(refs) <= ids, f"undeclared commands: {set(refs) - ids}"
    assert all(i.startswith(m["name"] + ".") for i in ids)


def test_installed_manifest_is_this_file():
    """The entry point of the installed (editable) package serves the manifest of this checkout."""
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-bcdi-dl")
    assert {c.id for c in pm.contributions.commands} == {c["id"] for c in _commands()}


def _npe2() -> list[str]:
    exe = Path(sys.executable).with_name("npe2")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("npe2")
    if found is None:
        pytest.skip("npe2 command not installed")
    return [found]


@pytest.mark.parametrize("args", [["napari-bcdi-dl"], ["napari-bcdi-dl", "--imports"], [str(MANIFEST)]],
                         ids=["by-name", "by-name-imports", "by-file"])
def test_npe2_validate_passes(args):
    proc = subprocess.run([*_npe2(), "validate", *args], capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "valid" in out.lower() and "invalid" not in out.lower(), out[-3000:]
