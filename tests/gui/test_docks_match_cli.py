"""The docks and the command line run the same pipeline step (``pipeline.steps``) and give the same arrays
for the same settings (issue 18): the Phasing dock vs ``bcdi-dl phase`` and ``bcdi-dl run``, the DL phase
dock's *Predict + refine* vs ``bcdi-dl phase --method dl``. The commands run in a child process, as a user
runs them (TensorFlow must not load into the process that renders napari)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from napari_bcdi_dl.widgets._layers import result_of

pytestmark = pytest.mark.gui

TIMEOUT_MS = 240_000
RECIPE = "HIO**40, ER**30"


def _bcdi_dl(*args) -> str:
    run = subprocess.run([sys.executable, "-m", "napari_bcdi_dl.cli", *map(str, args)], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def pattern():
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return simulate_pattern(size=32, seed=5, phase_range=0.5, gap="line:2", orientation=None)


def _viewer(make_napari_viewer, pattern):
    viewer = make_napari_viewer()
    data = viewer.add_image(pattern.intensity.copy(), name="sim", metadata={"bcdi": {"kind": "intensity"}})
    mask = viewer.add_labels(pattern.mask.copy(), name="sim gap mask")
    return viewer, data, mask


def _wait(qtbot, job):
    assert job is not None, "the dock did not start a job"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.error is None, job.error


def test_phasing_dock_equals_bcdi_dl_phase_and_run(make_napari_viewer, qtbot, pattern, tmp_path):
    from napari_bcdi_dl.widgets.phasing import PhasingWidget

    viewer, _data, _mask = _viewer(make_napari_viewer, pattern)
    w = PhasingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Phasing")
    w.select_layers("sim", "sim gap mask")
    w.recipe_edit.setText(RECIPE)
    w.runs_spin.setValue(2)
    w.seed_spin.setValue(4)
    _wait(qtbot, w.start())
    dock = result_of(viewer.layers["sim conventional modulus"])

    scan = tmp_path / "scan.npz"
    np.savez(scan, data=pattern.intensity, mask=pattern.mask)
    _bcdi_dl("phase", scan, "--out", tmp_path / "cli.npz", "--recipe", RECIPE, "--runs", 2, "--seed", 4)
    with np.load(tmp_path / "cli.npz") as f:
        cli_obj, cli_support = f["obj"], f["support"]
    np.testing.assert_array_equal(dock.obj, cli_obj)
    np.testing.assert_array_equal(dock.support, cli_support)

    # the dock's configuration, written as a pipeline file, reproduces it through `bcdi-dl run`
    cfg = {"scans": [str(scan)], "phase": dock.config["phase"], "strain": {"enabled": False}}
    (tmp_path / "dock.yaml").write_text(yaml.safe_dump(cfg))
    _bcdi_dl("run", tmp_path / "dock.yaml", "--out", tmp_path / "run")
    with np.load(tmp_path / "run" / "reconstruction.npz") as f:
        np.testing.assert_array_equal(f["obj"], dock.obj)


def test_dl_phase_dock_equals_bcdi_dl_phase_dl(make_napari_viewer, qtbot, pattern, tmp_path):
    from napari_bcdi_dl.widgets.dl_phase import DLPhaseWidget

    viewer, _data, _mask = _viewer(make_napari_viewer, pattern)
    w = DLPhaseWidget(viewer)
    viewer.window.add_dock_widget(w, name="DL phase")
    w.select_layers("sim", "sim gap mask")
    w.set_recipe("HIO**10, ER**10")
    w.candidates_spin.setValue(2)
    _wait(qtbot, w.predict_and_refine())
    dock = result_of(viewer.layers["sim DL modulus"])
    assert dock.method == "dl" and dock.config["phase"]["candidates"] == 2

    scan = tmp_path / "scan.npz"
    np.savez(scan, data=pattern.intensity, mask=pattern.mask)
    _bcdi_dl("phase", scan, "--out", tmp_path / "cli.npz", "--method", "dl", "--refine", "HIO**10, ER**10",
             "--candidates", 2)
    with np.load(tmp_path / "cli.npz") as f:
        np.testing.assert_allclose(f["obj"], dock.obj, rtol=0, atol=1e-5 * float(np.abs(dock.obj).max()))
        np.testing.assert_array_equal(f["support"], dock.support)
