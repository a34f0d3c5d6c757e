"""The sample data in a real napari viewer (Xvfb), and without TensorFlow or Qt behind it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.gui
def test_strained_particle_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-bcdi-dl", "strained_particle_with_gap")
    names = [layer.name for layer in viewer.layers]
    assert names == ["Strained particle", "Strained particle gap mask"]
    image, mask = viewer.layers
    assert image._type_string == "image" and mask._type_string == "labels"
    assert image.data.shape == (128, 128, 128) and image.data.dtype == np.float32
    assert mask.data.shape == image.data.shape and set(np.unique(mask.data)) == {0, 1}
    assert np.all(image.data[mask.data == 1] == 0)
    assert image.gamma < 1 and image.contrast_limits[1] < image.data.max()  # log-friendly display
    assert len(layers) == 2
    viewer.dims.ndisplay = 3  # renders in 3D too


@pytest.mark.gui
def test_ground_truth_sample_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-bcdi-dl", "strained_particle_truth")
    names = [layer.name for layer in viewer.layers]
    assert names == [
        "Strained particle truth modulus",
        "Strained particle truth phase",
        "Strained particle truth support",
    ]
    phase = viewer.layers["Strained particle truth phase"]
    assert tuple(phase.contrast_limits) == pytest.approx((-np.pi, np.pi))
    assert phase.colormap.name == "twilight"
    support = viewer.layers["Strained particle truth support"].data
    # the phase inside the crystal spans the sample's 3π (wrapped into ±π it fills the colour wheel)
    assert np.ptp(phase.data[support == 1]) > 0.9 * 2 * np.pi


def test_sample_data_imports_no_tensorflow_or_qt():
    code = (
        "import sys; from napari_bcdi_dl import _sample_data as s; "
        "layers = s.strained_particle_with_gap() + s.strained_particle_truth(); "
        "heavy = ('tensorflow', 'keras', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'napari'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "print(len(layers), bad)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "5 []"


def test_sample_returns_new_arrays_each_call():
    from napari_bcdi_dl import _sample_data as s

    a = s.strained_particle_with_gap()
    b = s.strained_particle_with_gap()
    assert a[1][0] is not b[1][0]
    a[1][0][:] = 0  # painting the mask of one sample leaves the next untouched
    assert b[1][0].sum() > 0
