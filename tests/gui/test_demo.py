"""``bcdi-dl demo`` without the event loop: :func:`open_demo` in a real napari viewer, and its fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from napari_bcdi_dl.cli import build_parser
from napari_bcdi_dl.cli.demo import TINY_NAME, load_demo_data, open_demo, tiny_pattern, widget_names

pytestmark = pytest.mark.gui


def _manifest_widgets() -> list[str]:
    from importlib import resources

    text = resources.files("napari_bcdi_dl").joinpath("napari.yaml").read_text(encoding="utf-8")
    return [w["display_name"] for w in yaml.safe_load(text)["contributions"].get("widgets", [])]


def _dock_titles(viewer) -> list[str]:
    return list(viewer.window.dock_widgets)


def test_every_manifest_widget_is_docked(make_napari_viewer):
    viewer = make_napari_viewer()
    opened = open_demo(viewer, sample=False)
    names = _manifest_widgets()
    assert names and widget_names() == names
    assert list(opened["widgets"]) == names, "every widget of napari.yaml, in order"
    titles = _dock_titles(viewer)
    for name in names:
        assert any(name in t for t in titles), (name, titles)
    assert opened["layers"] == [] and opened["source"] is None and len(viewer.layers) == 0


def test_demo_loads_the_sample_and_the_widget_sees_it(make_napari_viewer):
    viewer = make_napari_viewer()
    opened = open_demo(viewer)
    assert opened["source"] == "sample 'strained_particle_with_gap'"
    images = [lay for lay in viewer.layers if lay._type_string == "image"]
    assert images and images[0].data.ndim == 3 and float(images[0].data.max()) > 0
    dm = opened["widgets"]["Data & mask"]
    assert dm.data_layer is images[0]
    assert dm.mask_layer is not None, "the sample's gap mask is the data's '<data> gap mask'"
    assert dm.mask_layer.n_edit_dimensions == 3
    assert np.asarray(dm.mask_layer.data).any()


def test_fallback_to_the_real_pattern(make_napari_viewer, shared_data, real_pattern):
    viewer = make_napari_viewer()
    path = shared_data / "cdinn_exp_crop64.npz"
    layers, source = load_demo_data(viewer, sample_key="no_such_sample", real_pattern=path)
    assert source == str(path)
    np.testing.assert_array_equal(layers[0].data, real_pattern)


def test_fallback_to_the_tiny_pattern(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layers, source = load_demo_data(viewer, sample_key="no_such_sample", real_pattern=tmp_path / "absent.npz")
    assert source == TINY_NAME
    (layer,) = layers
    np.testing.assert_array_equal(layer.data, tiny_pattern())
    a = layer.data
    assert a.shape == (32, 32, 32) and a.dtype == np.float32
    peak = np.unravel_index(np.argmax(a), a.shape)
    assert max(abs(int(i) - 16) for i in peak) <= 4 and a.max() > 1e4, "a bright peak near the centre"
    assert not a[:, 19:21, :].any() and a[:, 18, :].any(), "a 2-row detector gap next to the peak"


def test_cli_registers_demo():
    args = build_parser().parse_args(["demo", "--no-sample"])
    assert args.no_sample and callable(args.func)
    assert build_parser().parse_args(["demo"]).no_sample is False


def test_demo_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "napari_bcdi_dl.cli", "demo"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, check=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("display check is for Linux")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("bcdi-dl demo: error: no display"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_first_impression(make_napari_viewer, qtbot):
    """Physical units without napari's unit warning, the first step's dock in front with readable tab titles,
    a labelled rocking axis, an oblique 3D camera."""
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTabBar

    from napari_bcdi_dl.widgets._camera import OBLIQUE_ANGLES, viewer_camera

    start = len(notification_manager.records)
    viewer = make_napari_viewer(show=True)
    opened = open_demo(viewer)
    qtbot.wait(500)  # the canvas draws (napari checks the units of the layers when it draws)
    data, mask = opened["layers"]
    assert str(data.units[0]) == str(mask.units[0]) == "1 / nanometer"
    assert tuple(mask.scale) == tuple(data.scale) and 0.001 < data.scale[0] < 0.01  # reciprocal step, 1/nm
    meta = data.metadata["bcdi"]
    assert meta["geometry"].energy_kev == 9.0 and meta["geometry"].hkl == (1, 1, 1)
    assert all(8 < v < 15 for v in meta["voxel_size_nm"]), "real-space voxel ~12 nm"
    messages = [n.message for n in notification_manager.records[start:]]
    assert not [m for m in messages if "units" in m.lower()], messages
    assert viewer.dims.axis_labels[0].startswith("rocking")
    bars = [b for b in viewer.window._qt_window.findChildren(QTabBar)
            if b.isVisible() and any("Results" in b.tabText(i) for i in range(b.count()))]
    assert bars, "the docks are tabbed"
    bar = bars[0]
    # the widget names, "&&" drawing one "&"
    assert [bar.tabText(i) for i in range(bar.count())] == [n.replace("&", "&&") for n in widget_names()]
    assert bar.tabText(bar.currentIndex()) == "Data && mask" and bar.elideMode() == Qt.ElideNone
    viewer.dims.ndisplay = 3
    assert tuple(viewer_camera(viewer).angles) == pytest.approx(OBLIQUE_ANGLES)
