"""The whole path in one real napari viewer (Xvfb), on a small simulated pattern with a detector gap.

Data & mask (auto-detect the gap) → Inpainting (linear) → DL phase (predict + refine) → Phasing
(conventional, short recipe) → Results (post-process both, compare), every widget docked by ``open_demo``
as ``bcdi-dl demo`` does. Checked: every layer produced and its ``scale``; the input layers keep their data
(same bytes) and scale; cancelling a long phasing run leaves the viewer as it was and the widget ready; the
Qt event loop is never blocked for more than 100 ms while a worker runs (a 10 ms ``QTimer`` records the
largest gap between its ticks; ``test_event_loop_free_during_*``). The main-thread step that shows a
result (``on_done``: adding layers) is timed apart; the walk prints all numbers (run with ``-s``).

Measured (2 shared CPU cores under load, Xvfb + Mesa llvmpipe): phasing 48³ ``HIO**400, ER**100`` max gap
0.2-2.2 s, of which the widget's per-iteration progress (``Job.progressed`` → ``QProgressBar.setValue``,
a synchronous repaint of a window holding a GL canvas, ~26 ms per call, 500 calls) is the cause; DL
predict + refine max gap 0.5-1 s while TensorFlow and the model loaded in a worker thread (GIL held), before
DL work moved to the model process (``widgets/_worker_process.py``; now 0.2-0.27 s at start, from napari's
first progress bar); showing results (``on_done``) 1-2 s. Since then: progress reaches the main thread at
most 4 times a second, the widget's bar is touched only when its integer percentage changes, and napari's
first progress bar of a window (0.1-0.23 s of main thread) is created and closed when a dock widget is built
(``_worker.warm_activity_dock``), not in the first run: phasing max gap 41-49 ms idle (was 84-211 ms, at
start), 65-197 ms at load 3.4-4.8 (isolated mid-run gaps; the main thread is starved). Full suite on the
idle machine: phasing 25 ms, first DL prediction in a fresh model process 30 ms. The two bound tests skip
(saying so) when the machine is under external load (load average > 1.5 per core).
"""

from __future__ import annotations

import hashlib
import itertools
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SIZE = 48
DATA_SCALE = (2.0, 1.0, 1.0)  # reciprocal-space step of the data layer (any positive numbers)
VOXEL = (10.0, 8.0, 8.0)  # real-space voxel size (nm) of objects phased from it
TIMEOUT_MS = 240_000
MAX_GAP_S = 0.100
# A watched phasing run must last more than 1 s to say something about the event loop: 500 iterations at 48³
# took 0.83-0.98 s on the CI machine (2026-12-05), so the watched runs do 1,500.
WATCHED_RECIPE = "HIO**1200, ER**300"
TICK_MS = 10
SETTLE_MS = 300  # event loop time given to a new window before a monitored run


# ------------------------------------------------------------------------------------------- helpers
class LoopMonitor:
    """A 10 ms QTimer; ``max_gap`` is the largest interval between ticks (s) outside the timed ``on_done``
    windows, ``on_done_max`` the longest of those windows (main-thread work showing a result)."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.windows: list[tuple[float, float]] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> LoopMonitor:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    def timed(self, func):
        """Wrap a main-thread callback so that its duration is recorded as an on_done window."""
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.windows.append((t0, time.perf_counter()))
        return wrapper

    def _gaps(self):
        return list(itertools.pairwise(self.ticks))

    def _showing(self, a: float, b: float) -> bool:
        """True when the interval (a, b) overlaps an on_done window or is the first interval after one:
        that one is the deferred first paint of the layers on_done just added (0.1-0.15 s on llvmpipe),
        i.e. still showing the result, not work of the run."""
        return any(a < w1 and b > w0 for w0, w1 in self.windows) or any(
            w1 <= a <= w1 + 2 * TICK_MS / 1000 for _, w1 in self.windows)

    @property
    def max_gap(self) -> float:
        """Largest tick interval that is not part of showing a result (see :meth:`_showing`)."""
        gaps = [b - a for a, b in self._gaps() if not self._showing(a, b)]
        return max(gaps) if gaps else 0.0

    def long_gaps(self, threshold: float = MAX_GAP_S / 2) -> str:
        """The gaps above ``threshold`` as ``start+duration`` in ms from the start (``*``: showing a result)."""
        t0 = self.ticks[0] if self.ticks else 0.0
        return ", ".join(f"{(a - t0) * 1000:.0f}+{(b - a) * 1000:.0f}"
                         + ("*" if self._showing(a, b) else "")
                         for a, b in self._gaps() if b - a > threshold)

    @property
    def on_done_max(self) -> float:
        return max((w1 - w0 for w0, w1 in self.windows), default=0.0)


def _digest(layer) -> tuple:
    data = np.ascontiguousarray(np.asarray(layer.data))
    return hashlib.sha256(data.tobytes()).hexdigest(), data.shape, str(data.dtype), tuple(layer.scale)


def _layer(viewer, name):
    found = [layer for layer in viewer.layers if layer.name == name]
    assert found, f"no layer {name!r} in {[layer.name for layer in viewer.layers]}"
    return found[0]


def _names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers]


def _wait(qtbot, job, timeout=TIMEOUT_MS):
    assert job is not None, "the widget did not start a job"
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert job.error is None, f"{job.desc} failed: {job.error!r}"
    assert not job.cancelled
    return job


def _run_monitored(qtbot, monitor: LoopMonitor, start):
    """Start a job with ``start()``, record the event loop until it is done; returns the job."""
    monitor.start()
    t0 = time.perf_counter()
    job = start()
    started = time.perf_counter() - t0
    try:
        _wait(qtbot, job)
    finally:
        monitor.stop()
    return job, started


@pytest.fixture(scope="module")
def pattern():
    from napari_bcdi_dl.core.simulate import simulate_pattern

    return simulate_pattern(size=SIZE, seed=3, phase_range=2.0, gap="line:2", max_counts=1e5)


@pytest.fixture
def errors():
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: [n.message for n in notification_manager.records[start:]
                    if str(n.severity).lower() == "error"]


# -------------------------------------------------------------------------------------------- the test
def test_whole_path_in_one_viewer(make_napari_viewer, qtbot, pattern, errors, monkeypatch):
    from napari_bcdi_dl.cli.demo import open_demo

    viewer = make_napari_viewer(show=True)
    w = open_demo(viewer, sample=False)["widgets"]
    assert list(w) == ["Data & mask", "Prepare", "Inpainting", "DL phase", "Phasing", "Results",
                       "Defects", "Batch"]
    dm, inp, dl, ph, res = (w[k] for k in ("Data & mask", "Inpainting", "DL phase", "Phasing", "Results"))
    report: dict[str, float] = {}

    data = viewer.add_image(pattern.intensity.copy(), name="sim", scale=DATA_SCALE, gamma=0.2,
                            colormap="magma",
                            metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": list(VOXEL)}})
    before = {"sim": _digest(data)}

    # 1. Data & mask: auto-detect the gap -> "sim gap mask" with the data's scale
    dm.select_data_layer("sim")
    assert dm.data_layer is data
    _wait(qtbot, dm.detect_gaps())
    mask = _layer(viewer, "sim gap mask")
    assert mask._type_string == "labels" and mask.data.shape == pattern.intensity.shape
    assert tuple(mask.scale) == DATA_SCALE and mask.n_edit_dimensions == 3
    assert np.all(np.asarray(mask.data)[pattern.mask != 0] != 0), "every simulated gap voxel is masked"
    assert np.asarray(mask.data).sum() <= 2 * pattern.mask.sum()
    before["sim gap mask"] = _digest(mask)

    # 2. Inpainting (linear) -> "sim inpainted", data's scale, gap filled, elsewhere the data
    inp.set_layers(data, mask)
    inp.method_combo.setCurrentText("linear")
    _wait(qtbot, inp.run())
    filled = _layer(viewer, "sim inpainted")
    assert filled.data.shape == data.data.shape and tuple(filled.scale) == DATA_SCALE
    gap = pattern.mask != 0
    np.testing.assert_array_equal(np.asarray(filled.data)[~gap], pattern.intensity[~gap])
    assert np.asarray(filled.data)[gap].sum() > 0
    before["sim inpainted"] = _digest(filled)
    src = "sim inpainted"
    # the inpainted layer does not carry the data's voxel_size_nm (see test_inpainted_layer_keeps_...):
    # objects phased from it get the voxel size it carries, or none (scale 1)
    vs = ((filled.metadata or {}).get("bcdi") or {}).get("voxel_size_nm")
    obj_scale = tuple(float(v) for v in vs) if vs is not None else (1.0, 1.0, 1.0)

    # 3. DL phase: predict + refine (few iterations), event loop watched (the first call loads the model)
    dl.select_layers(src, "sim gap mask")
    dl.set_recipe("HIO**20, ER**20")
    mon = LoopMonitor()
    monkeypatch.setattr(dl, "_predicted", mon.timed(dl._predicted))
    monkeypatch.setattr(dl, "_refined", mon.timed(dl._refined))
    _job, report["dl start (main thread) s"] = _run_monitored(qtbot, mon, dl.predict_and_refine)
    report["dl predict+refine: max loop gap s"] = mon.max_gap
    report["dl predict+refine: showing layers (on_done) s"] = mon.on_done_max
    assert not errors(), errors()
    pred = _layer(viewer, f"{src} predicted phase")
    assert pred.data.shape == data.data.shape and tuple(pred.scale) == DATA_SCALE
    assert np.abs(pred.data).max() <= np.pi + 1e-5
    for prefix in (f"{src} DL unrefined", f"{src} DL"):
        for kind in ("modulus", "phase", "support"):
            lay = _layer(viewer, f"{prefix} {kind}")
            assert lay.data.shape == data.data.shape and tuple(lay.scale) == obj_scale, lay.name
        assert np.asarray(_layer(viewer, f"{prefix} support").data).sum() > 0
    assert dl.predict_button.isEnabled() and not dl.cancel_button.isEnabled()

    # 4. Phasing (conventional), a recipe lasting a couple of seconds, event loop watched
    ph.select_layers(src, "sim gap mask")
    ph.recipe_edit.setText(WATCHED_RECIPE)
    mon2 = LoopMonitor()
    monkeypatch.setattr(ph, "_show", mon2.timed(ph._show))
    t0 = time.perf_counter()
    _job, report["phasing start (main thread) s"] = _run_monitored(qtbot, mon2, ph.start)
    report["phasing run s"] = time.perf_counter() - t0
    report["phasing: max loop gap s"] = mon2.max_gap
    report["phasing: showing layers (on_done) s"] = mon2.on_done_max
    assert not errors(), errors()
    for kind in ("modulus", "phase", "support"):
        lay = _layer(viewer, f"{src} conventional {kind}")
        assert lay.data.shape == data.data.shape and tuple(lay.scale) == obj_scale, lay.name
    assert "LLK" in ph.status.text()

    # 5. Cancel a long phasing run once it has progressed: nothing changes, the widget is ready again
    snapshot = {layer.name: _digest(layer) for layer in viewer.layers}
    ph.recipe_edit.setText("HIO**20000")
    seen = []
    job = ph.start()
    assert job is not None and not ph.start_button.isEnabled() and ph.cancel_button.isEnabled()
    job.progressed.connect(lambda d, t: seen.append(d))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] > 0, timeout=TIMEOUT_MS)
    ph.cancel_button.click()
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert job.cancelled and job.error is None
    assert {layer.name: _digest(layer) for layer in viewer.layers} == snapshot, "no partial layers"
    assert ph.start_button.isEnabled() and not ph.cancel_button.isEnabled()
    assert "cancelled" in ph.status.text()
    assert not errors(), errors()
    ph.recipe_edit.setText(WATCHED_RECIPE)

    # 6. Results: post-process both reconstructions, then compare them
    recs = {"conv": f"{src} conventional modulus", "dl": f"{src} DL modulus"}
    assert {n.removesuffix(" modulus") for n in recs.values()} <= set(res.source_names()), res.source_names()
    for out, name in recs.items():
        res.select_source(name)
        res.voxel_edit.setText(" ".join(f"{v:g}" for v in VOXEL))
        res.name_edit.setText(f"{out} results")
        _wait(qtbot, res.process())
        for kind in ("modulus", "phase", "strain"):
            lay = _layer(viewer, f"{out} results {kind}")
            assert tuple(lay.scale) == pytest.approx(VOXEL), lay.name
            assert lay.data.shape == data.data.shape
        strain = np.asarray(_layer(viewer, f"{out} results strain").data)
        assert np.isfinite(strain).any() and np.isnan(strain).any(), "strain is NaN outside the support"
    assert not errors(), errors()
    _wait(qtbot, res.compare([recs["conv"], recs["dl"]]))
    conv_base, dl_base = (n.removesuffix(" modulus") for n in recs.values())
    for name in (f"compare {conv_base} phase", f"compare {dl_base} phase",
                 f"compare {conv_base} − {dl_base} phase diff"):
        lay = _layer(viewer, name)
        assert lay.data.shape == data.data.shape and tuple(lay.scale) == pytest.approx(obj_scale), name
    # (which layers the comparison leaves visible: test_compare_in_the_demo_shows_its_layers)
    from napari_bcdi_dl.widgets._layers import viewer_grid

    assert viewer_grid(viewer).enabled
    assert res.table.rowCount() == 2
    assert not errors(), errors()

    # every input layer kept its bytes and scale; nothing unexpected appeared
    for name, digest in before.items():
        assert _digest(_layer(viewer, name)) == digest, f"input layer {name!r} was modified"
    expected = {"sim", "sim gap mask", src, f"{src} predicted phase"}
    expected |= {f"{p} {k}" for p in (f"{src} DL unrefined", f"{src} DL", f"{src} conventional")
                 for k in ("modulus", "phase", "support")}
    expected |= {f"{o} results {k}" for o in ("conv", "dl") for k in ("modulus", "phase", "strain")}
    expected |= {f"compare {conv_base} phase", f"compare {dl_base} phase",
                 f"compare {conv_base} − {dl_base} phase diff"}
    expected |= {f"{o} results surface" for o in ("conv", "dl")}
    expected |= {f"compare {conv_base} surface", f"compare {dl_base} surface"}
    assert set(_names(viewer)) == expected, sorted(set(_names(viewer)) ^ expected)

    print("\nend-to-end timings: " + "; ".join(f"{k} {v * 1000:.0f} ms" if k.endswith(" s") else f"{k} {v}"
                                               for k, v in report.items()))
    assert report["phasing run s"] > 1.0, "the watched phasing run should last a while"
    # the < 100 ms bound on the run itself: test_event_loop_free_during_* below (known to fail today)


def test_inpainted_layer_keeps_voxel_size(make_napari_viewer, qtbot, pattern):
    from napari_bcdi_dl.widgets.inpainting import InpaintingWidget

    viewer = make_napari_viewer()
    data = viewer.add_image(pattern.intensity.copy(), name="sim", scale=DATA_SCALE,
                            metadata={"bcdi": {"kind": "intensity", "voxel_size_nm": list(VOXEL)}})
    mask = viewer.add_labels(pattern.mask.copy(), name="sim gap mask", scale=DATA_SCALE)
    w = InpaintingWidget(viewer)
    w.set_layers(data, mask)
    w.method_combo.setCurrentText("linear")
    _wait(qtbot, w.run())
    meta = (_layer(viewer, "sim inpainted").metadata or {}).get("bcdi") or {}
    assert tuple(meta.get("voxel_size_nm") or ()) == VOXEL


def test_compare_in_the_demo_shows_its_layers(make_napari_viewer, qtbot, pattern):
    viewer = make_napari_viewer()
    _dock, res = viewer.window.add_plugin_dock_widget("napari-bcdi-dl", "Results")
    from napari_bcdi_dl.core.types import Reconstruction, ReconstructionResult
    from napari_bcdi_dl.widgets._layers import result_metadata

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        obj = (pattern.obj * np.exp(1j * rng.uniform(-0.1, 0.1, pattern.obj.shape))).astype(np.complex64)
        result = ReconstructionResult(Reconstruction(obj, pattern.support), voxel_size_nm=tuple(VOXEL))
        viewer.add_image(np.abs(obj), name=f"{name} modulus", scale=VOXEL,
                         metadata=result_metadata(result, "modulus"))
    _wait(qtbot, res.compare(["a modulus", "b modulus"]))
    shown = {layer.name for layer in viewer.layers if layer.visible}
    assert {"compare a phase", "compare b phase"} <= shown, shown


def _responsiveness_setup(make_napari_viewer, qtbot, pattern, widget_name):
    viewer = make_napari_viewer(show=True)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-bcdi-dl", widget_name)
    viewer.add_image(pattern.intensity.copy(), name="sim", metadata={"bcdi": {"kind": "intensity"}})
    viewer.add_labels(pattern.mask.copy(), name="sim gap mask")
    widget.select_layers("sim", "sim gap mask")
    # Let the window paint its new layers before a run starts, as it has when a user presses Start: else the
    # first canvas paint (~0.1 s, llvmpipe) runs inside the run, from the processEvents() that napari calls
    # when the job's progress bar is added to its activity dock.
    qtbot.wait(SETTLE_MS)
    return viewer, widget


def _require_unloaded_machine() -> None:
    """The 100 ms bound is about this project's code: measured idle (2 cores, Xvfb + llvmpipe) the largest
    gap is 25-50 ms during a phasing run and 30 ms during a first DL prediction in a fresh model process.
    With other jobs on the cores (load average > 1.5 per core) the main thread is starved by the scheduler
    (65-200 ms gaps at load 3.4-4.8 on 2 cores, 76 ms at 3.2, mid-run, not in our code): skip, saying so, rather than
    measure the neighbours."""
    import os

    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 1.5 * cores:
        pytest.skip(f"machine under external load (load average {load:.1f} on {cores} cores): "
                    "the event-loop bound is measured on an unloaded machine")


def test_event_loop_free_during_phasing(make_napari_viewer, qtbot, pattern, monkeypatch):
    _require_unloaded_machine()
    _viewer, ph = _responsiveness_setup(make_napari_viewer, qtbot, pattern, "Phasing")
    ph.recipe_edit.setText(WATCHED_RECIPE)
    mon = LoopMonitor()
    monkeypatch.setattr(ph, "_show", mon.timed(ph._show))
    t0 = time.perf_counter()
    _run_monitored(qtbot, mon, ph.start)
    run_s = time.perf_counter() - t0
    print(f"\nphasing: run {run_s:.1f} s, max loop gap {mon.max_gap * 1000:.0f} ms, "
          f"showing layers {mon.on_done_max * 1000:.0f} ms; gaps > 50 ms (start+length): {mon.long_gaps()}")
    assert run_s > 1.0
    assert mon.max_gap < MAX_GAP_S


def test_event_loop_free_during_dl_prediction(make_napari_viewer, qtbot, pattern, monkeypatch):
    """The DL phase widget's *Predict + refine* as the user runs it: in a fresh model process (its first call
    imports TensorFlow and loads the model there, the worst case), the job thread only waits on a socket.
    The napari process never imports TensorFlow, so the event loop stays free."""
    import sys

    from napari_bcdi_dl.widgets import _worker_process
    from napari_bcdi_dl.widgets._worker_process import ModelProcess

    _require_unloaded_machine()
    _viewer, dl = _responsiveness_setup(make_napari_viewer, qtbot, pattern, "DL phase")
    dl.set_recipe("HIO**20, ER**20")
    had_tf = "tensorflow" in sys.modules
    proc = ModelProcess()
    monkeypatch.setattr(_worker_process, "_PROCESS", proc)
    mon = LoopMonitor()
    monkeypatch.setattr(dl, "_predicted", mon.timed(dl._predicted))
    monkeypatch.setattr(dl, "_refined", mon.timed(dl._refined))
    try:
        job, _ = _run_monitored(qtbot, mon, dl.predict_and_refine)
    finally:
        proc.close()
    print(f"\nDL predict+refine (widget, fresh model process): max loop gap {mon.max_gap * 1000:.0f} ms, "
          f"showing layers {mon.on_done_max * 1000:.0f} ms; gaps > 50 ms (start+length): {mon.long_gaps()}")
    rec = job.result.reconstruction
    assert job.result.prediction is not None and rec.obj.shape == pattern.intensity.shape and rec.method == "dl"
    assert had_tf or "tensorflow" not in sys.modules, "TensorFlow stays out of the napari process"
    assert mon.max_gap < MAX_GAP_S
