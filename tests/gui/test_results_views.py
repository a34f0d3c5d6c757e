"""The views of a result in a real napari viewer (Xvfb): the isosurface coloured by a field, slices through the
centre of mass, the report, the geometry checks of the dock, the side-by-side comparison, and the throttled
live view of a running phasing."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from scipy import ndimage

from napari_bcdi_dl.core.surface import filled, result_surface
from napari_bcdi_dl.widgets._camera import OBLIQUE_ANGLES, viewer_camera
from napari_bcdi_dl.widgets._layers import viewer_grid

pytestmark = pytest.mark.gui

TIMEOUT_MS = 60_000
VOXEL = (6.0, 5.0, 4.0)
N = 40
CENTRE = (17, 22, 20)  # voxel, off the array centre
G111 = 2 * np.pi * np.sqrt(3) / 0.4078


@pytest.fixture(scope="module")
def planted():
    """A smooth ellipsoid whose displacement is quadratic along z: its strain is a planted linear field."""
    z, y, x = np.meshgrid(*[np.arange(N, dtype=float)] * 3, indexing="ij")
    r = ((z - CENTRE[0]) / 9) ** 2 + ((y - CENTRE[1]) / 11) ** 2 + ((x - CENTRE[2]) / 10) ** 2
    modulus = ndimage.gaussian_filter((r <= 1).astype(float), 0.8)
    u = 2e-5 * ((z - CENTRE[0]) * VOXEL[0]) ** 2  # nm: strain du/dz = 4e-5 (z - z0) voxel, linear in z
    obj = (modulus * np.exp(1j * G111 * u)).astype(np.complex64)
    support = (modulus >= 0.2 * modulus.max()).astype(np.uint8)
    return obj, support


@pytest.fixture
def notes():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [(str(n.severity).lower(), n.message) for n in notification_manager.records[start:]]


def _errors(notes) -> list:
    return [m for s, m in notes() if s == "error"]


def _wait(qtbot, job, timeout=TIMEOUT_MS):
    assert job is not None, "no job started"
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert job.error is None, job.error
    return job


def _layer(viewer, name):
    found = [lay for lay in viewer.layers if lay.name == name]
    assert found, f"no layer {name!r} in {[lay.name for lay in viewer.layers]}"
    return found[0]


def _results(make_napari_viewer, planted, *, names=("rec",), show=False):
    from napari_bcdi_dl.core.types import Reconstruction, ReconstructionResult
    from napari_bcdi_dl.widgets._layers import result_metadata
    from napari_bcdi_dl.widgets.results import ResultsWidget

    viewer = make_napari_viewer(show=show)
    obj, support = planted
    for k, name in enumerate(names):
        o = (obj * np.exp(1j * 0.4 * k)).astype(np.complex64)
        history = [{"iteration": i, "llk": 1 / i + 0.5, "llk_free": 1.1 / i + 0.5} for i in range(1, 100, 10)]
        res = ReconstructionResult(Reconstruction(o, support, llk=0.5, method="sim", history=history),
                                   voxel_size_nm=tuple(VOXEL))
        viewer.add_image(np.abs(o), name=f"{name} modulus", scale=VOXEL, units="nm",
                         metadata=result_metadata(res, "modulus"))
    w = ResultsWidget(viewer)
    viewer.window.add_dock_widget(w, name="Results")
    w.select_source(f"{names[0]}")  # fills the fields from the source: the reflection is typed after
    w.hkl_edit.setText("1 1 1")
    w.lattice_edit.setText("0.4078")
    return viewer, w


def test_surface_coloured_by_strain_follows_the_slider_and_the_field(make_napari_viewer, qtbot, planted, notes):
    from napari.layers import Surface

    viewer, w = _results(make_napari_viewer, planted)
    _wait(qtbot, w.process())
    assert not _errors(notes), notes()
    surf = _layer(viewer, "rec results surface")
    assert isinstance(surf, Surface) and str(surf.units[0]) == "nanometer"
    assert surf.colormap.name == "coolwarm"
    lo, hi = surf.contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0, "colour limits symmetric about 0"
    vertices, _faces, values = surf.data[:3]
    res = w.result
    # the vertex values are the strain interpolated (trilinear) at the vertices, in nm
    index = np.asarray(vertices) / np.asarray(res.voxel_size)
    expected = ndimage.map_coordinates(filled(res.strain, res.support != 0), index.T, order=1, mode="nearest")
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-9)
    # ... which is the planted linear strain along z (away from the one-sided differences at the surface)
    z0 = np.average(np.arange(N), weights=np.abs(res.modulus).sum(axis=(1, 2)))
    linear = np.polyfit(index[:, 0] - z0, values, 1)
    assert linear[0] == pytest.approx(4e-5 * VOXEL[0], rel=0.1)
    assert "strain" in w.colour_bar.text() and f"{hi:.2e}"[:4] in w.colour_bar.text()
    # the slider rebuilds the surface in a worker; the main thread only waits for the result
    n_before = len(vertices)
    t0 = time.perf_counter()
    w.iso_slider.setValue(60)
    assert time.perf_counter() - t0 < 0.1
    qtbot.waitUntil(lambda: w.display.surface_job is not None and w.display.surface_job.done, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(surf.data[0]) != n_before, timeout=TIMEOUT_MS)
    assert surf.metadata["bcdi"]["threshold"] == pytest.approx(0.6)
    assert len(surf.data[0]) < n_before, "a higher threshold: a smaller surface"
    # colour by displacement: values and colour bar in nm
    w.field_combo.setCurrentText("displacement")
    qtbot.waitUntil(lambda: surf.metadata["bcdi"]["field"] == "displacement", timeout=TIMEOUT_MS)
    ref = result_surface(res, "displacement", 0.6)
    np.testing.assert_allclose(surf.data[2], ref.values, rtol=1e-5, atol=1e-9)
    assert w.colour_bar.title == "displacement (nm)"
    assert _layer(viewer, "rec results strain").colormap.name == "coolwarm"
    assert len(viewer.layers) == 5, "rebuilding replaced the surface, it added nothing"


def test_view_goes_to_the_crystal_and_slices_pass_through_its_centre_of_mass(make_napari_viewer, qtbot, planted):
    viewer, w = _results(make_napari_viewer, planted, show=True)
    viewer.dims.ndisplay = 3
    _wait(qtbot, w.process())
    res = w.result
    s = res.support != 0
    com = ndimage.center_of_mass(np.where(s, res.modulus, 0))
    world = np.asarray(com) * np.asarray(res.voxel_size)
    np.testing.assert_allclose(viewer.dims.point[-3:], world, atol=max(res.voxel_size))
    cam = viewer_camera(viewer)
    np.testing.assert_allclose(cam.center, world, atol=1e-6)
    assert tuple(cam.angles) == pytest.approx(OBLIQUE_ANGLES)
    # zoomed on the crystal (~20 voxels), not on the whole 40³ array
    canvas = min(viewer.window._qt_viewer.canvas.size)
    crystal = max((np.ptp(np.argwhere(s), axis=0) + 1) * np.asarray(res.voxel_size))
    assert cam.zoom * crystal == pytest.approx(0.75 * canvas, rel=0.02)
    assert cam.zoom * max(np.asarray(res.modulus.shape) * np.asarray(res.voxel_size)) > canvas
    pix = w.display.slices.pixmap()
    assert pix is not None and not pix.isNull() and pix.width() > 200
    from napari_bcdi_dl.widgets._camera import viewer_scale_bar

    assert viewer_scale_bar(viewer).visible


def test_report_button_writes_png_and_pdf(make_napari_viewer, qtbot, planted, notes, tmp_path):
    from PIL import Image

    _viewer, w = _results(make_napari_viewer, planted)
    assert w.report(tmp_path / "early.png") is None
    assert any("nothing to report" in m for m in _errors(notes))
    _wait(qtbot, w.process())
    assert w.report_button.isEnabled()
    _wait(qtbot, w.report(tmp_path / "rec.png"))
    with Image.open(tmp_path / "rec.png") as im:
        im.verify()
    _wait(qtbot, w.report(tmp_path / "rec.pdf"))
    assert (tmp_path / "rec.pdf").read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.pdf", "rec.png"], "no temporary file left"


def test_dock_refuses_a_partial_geometry_and_warns_on_angles(make_napari_viewer, qtbot, planted, notes):
    viewer, w = _results(make_napari_viewer, planted)
    n_layers = len(viewer.layers)
    w.energy_edit.setText("9")
    assert w.process() is None
    (err,) = _errors(notes)
    assert err.startswith("Results: partial geometry: Energy (keV) given but")
    for name in ("Distance (m)", "Pixel (m)", "Rocking step (°)"):
        assert name in err
    assert len(viewer.layers) == n_layers
    w.lattice_edit.setText("")
    w.energy_edit.setText("")
    assert w.process() is None
    assert "hkl given but Lattice (nm) missing" in _errors(notes)[-1]
    # a complete geometry whose detector angle is not the reflection's: a warning with both 2θ
    from napari_bcdi_dl.core.types import Geometry

    _layer(viewer, "rec modulus").metadata["bcdi"]["result"].geometry = Geometry(angles_deg={"delta": 39.0,
                                                                                             "eta": 19.5})
    w.select_source("rec")  # the source's geometry (its angles) is read again; the setup is typed in
    for edit, text in ((w.energy_edit, "9"), (w.distance_edit, "0.5"), (w.pixel_edit, "55e-6"),
                       (w.step_edit, "0.01"), (w.hkl_edit, "1 1 1"), (w.lattice_edit, "0.4078")):
        edit.setText(text)
    _wait(qtbot, w.process())
    warnings = [m for s, m in notes() if s == "warning" and "2θ" in m]
    assert warnings and "39.000°" in warnings[-1] and "34.02" in warnings[-1], notes()
    assert "2θ" in w.status.text()


def test_compare_shows_coloured_surfaces_side_by_side(make_napari_viewer, qtbot, planted, notes):
    from napari.layers import Surface

    viewer, w = _results(make_napari_viewer, planted, names=("a", "b"))
    _wait(qtbot, w.compare(["a", "b"]))
    assert not _errors(notes), notes()
    sa, sb = _layer(viewer, "compare a surface"), _layer(viewer, "compare b surface")
    assert isinstance(sa, Surface) and isinstance(sb, Surface)
    assert tuple(sa.contrast_limits) == pytest.approx(tuple(sb.contrast_limits))
    assert sa.contrast_limits[0] == pytest.approx(-sa.contrast_limits[1])
    np.testing.assert_allclose(sa.data[2], sb.data[2], atol=1e-7)  # b is a (phase-offset) a: same strain
    diff = _layer(viewer, "compare a − b phase diff")
    assert np.nanmax(np.abs(diff.data)) < 1e-3 and diff.depiction == "plane"
    assert viewer_grid(viewer).enabled and viewer.dims.ndisplay == 3
    shown = {lay.name for lay in viewer.layers if lay.visible}
    assert {"compare a surface", "compare b surface", "compare a phase", "compare b phase"} <= shown
    assert "a modulus" not in shown
    assert w.table.rowCount() == 2
    assert w.comparison["rows"][1]["error"] < 1e-3


def _max_gap(ticks) -> float:
    return max(b - a for a, b in itertools.pairwise(ticks)) if len(ticks) > 1 else 0.0


def test_live_view_updates_are_throttled(make_napari_viewer, qtbot, notes):
    from qtpy.QtCore import QTimer

    from napari_bcdi_dl.core.simulate import simulate_pattern
    from napari_bcdi_dl.widgets._live import MIN_INTERVAL_S
    from napari_bcdi_dl.widgets.phasing import PhasingWidget

    p = simulate_pattern(size=32, seed=3, phase_range=0.5, gap="line:2", orientation=None)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(p.intensity, name="sim", metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": VOXEL}})
    viewer.add_labels(p.mask, name="sim gap mask")
    w = PhasingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Phasing")
    w.select_layers("sim", "sim gap mask")
    w.recipe_edit.setText("HIO**900")
    w.live_spin.setValue(1)  # a snapshot every iteration: the throttle alone limits the updates
    seen_live = []
    viewer.layers.events.inserted.connect(lambda e: seen_live.append(e.value.name))
    qtbot.wait(300)
    ticks: list = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.monotonic()
    job = w.start()
    _wait(qtbot, job)
    duration = time.monotonic() - t0
    timer.stop()
    live = w.live
    assert not _errors(notes), notes()
    assert live.snapshots >= 900, "the engine offered a snapshot every iteration"
    assert 2 <= live.updates <= duration / MIN_INTERVAL_S + 2, (live.updates, duration)
    gaps = np.diff(live.update_times)
    assert gaps.min() >= MIN_INTERVAL_S * 0.9, gaps
    assert seen_live == ["sim conventional modulus", "sim conventional phase", "sim conventional support"], \
        "no layer comes and goes during the run: only the result layers, at the end"
    assert w.live_preview.rgba is not None and w.live_preview.rgba.shape[2] == 4
    names = [lay.name for lay in viewer.layers]
    assert "sim conventional modulus" in names and len(w.llk_plot.history) > 10
    max_gap = _max_gap(ticks)
    print(f"\nlive view: {live.snapshots} snapshots, {live.updates} updates in {duration:.1f} s, "
          f"max event-loop gap {max_gap * 1000:.0f} ms, updates took "
          f"{', '.join(f'{t * 1000:.1f}' for t in live.show_seconds)} ms")
    assert max(live.show_seconds) < 0.05, "a live update is a picture in the dock: milliseconds"
